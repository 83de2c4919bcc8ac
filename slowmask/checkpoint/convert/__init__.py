"""Published checkpoints in and out: each foreign format's key mapping to and from
slowmask's state dict, with a report of every tensor used, filled, dropped or created."""
