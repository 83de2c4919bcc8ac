"""The signals that ask a training run to checkpoint and stop (see engine/preemption.py):
SIGTERM (SLURM preemption, scancel), SIGUSR1 (SLURM's `--signal=USR1@90` before a time
limit) and SIGUSR2 (submitit's time-out and preemption signal)."""

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
