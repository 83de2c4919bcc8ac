"""A WatchedLoader's workers: they drop the job's stop signals but end on their parent's
SIGTERM; an error in one ends the epoch (and the workers) at once, an expected error with
its own one-line message; a killed one raises LoaderWorkerKilled at the next batch."""

import os
import signal
import subprocess
import time
from multiprocessing import active_children

import pytest
import torch
from torch.utils.data import Dataset

from slowmask.data.loader_workers import LoaderWorkerKilled, WatchedLoader, shield_from_stop_signals
from slowmask.utils.errors import DataError

ENDS_WITHIN_S = 5.0


class Items(Dataset):
    """`length` items, each a (2,) tensor after `delay_s`; item `bad` raises `error`, and
    item `odd` is of another shape (a batch holding it cannot be stacked)."""

    def __init__(self, length=16, delay_s=0.0, bad=-1, error=None, odd=-1):
        self.length, self.delay_s, self.bad, self.error, self.odd = length, delay_s, bad, error, odd

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        time.sleep(self.delay_s)
        if index == self.bad:
            raise self.error
        return torch.zeros(3 if index == self.odd else 2)


def loader(dataset, **kwargs):
    return WatchedLoader(dataset, batch_size=2, num_workers=2, worker_init_fn=shield_from_stop_signals,
                         collate_fn=torch.stack, **kwargs)


def wait_until_no_worker_is_left(workers):
    deadline = time.monotonic() + ENDS_WITHIN_S
    while {child.pid for child in active_children()} & set(workers):
        assert time.monotonic() < deadline, "the workers outlived the error"
        time.sleep(0.02)


def test_a_worker_drops_others_stop_signals_and_ends_on_its_parents_sigterm():
    batches = iter(loader(Items(delay_s=0.05)))
    next(batches)
    first, second = (child for child in active_children() if child.pid in batches.workers)
    for name in ("TERM", "USR1", "INT"):  # as SLURM or a terminal sends them: from another process
        subprocess.run(["kill", f"-{name}", str(first.pid)], check=True)
    time.sleep(0.5)
    assert first.is_alive()
    os.kill(first.pid, signal.SIGTERM)  # from the parent: how DataLoader and multiprocessing end it
    first.join(ENDS_WITHIN_S)
    assert first.exitcode == 0
    batches.close()
    second.join(ENDS_WITHIN_S)
    assert not second.is_alive()


def test_an_expected_error_in_a_worker_keeps_its_own_message_and_ends_the_workers():
    batches = iter(loader(Items(bad=5, error=DataError("item 5 is broken: fix the list"))))
    with pytest.raises(DataError) as raised:
        for _ in batches:
            pass
    assert str(raised.value) == "item 5 is broken: fix the list"
    assert "Caught DataError in DataLoader worker process" in raised.value.__notes__[0]
    wait_until_no_worker_is_left(batches.workers)


@pytest.mark.parametrize("dataset, error", [
    (Items(bad=5, error=ValueError("a plug-in's bug")), ValueError),  # a custom dataset raising at one item
    (Items(odd=5), RuntimeError),  # a batch collate cannot stack
])
def test_any_other_error_in_a_worker_ends_the_workers_at_once(dataset, error):
    batches = iter(loader(dataset))
    start = time.monotonic()
    with pytest.raises(error, match="in DataLoader worker process"):
        for _ in batches:
            pass
    wait_until_no_worker_is_left(batches.workers)
    assert time.monotonic() - start < ENDS_WITHIN_S


def test_a_killed_worker_raises_loader_worker_killed_at_the_next_batch_with_its_pid():
    batches = iter(loader(Items(length=64, delay_s=0.1)))
    next(batches)
    victim = min(batches.workers)
    os.kill(victim, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(LoaderWorkerKilled, match=rf"worker \(pid {victim}\) ended by SIGKILL.*out-of-memory"):
        for _ in batches:
            pass
    assert time.monotonic() - start < ENDS_WITHIN_S
    wait_until_no_worker_is_left(batches.workers)
    assert signal.getsignal(signal.SIGCHLD) is batches.previous  # torch's handler is back
