"""SIGTERM / SIGUSR1 / SIGUSR2 / SIGINT stop the loop at the next optimizer update with a
checkpoint; all ranks of a job stop after the same iteration. Before the first step a
signal stops at once; a second Ctrl-C aborts at once."""

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from slowmask.engine.resume import ResumePoint
from slowmask.engine.hooks import StopOnSignal, TrainingPreempted, run_from
from slowmask.engine.loop import Hook, TrainLoop
from slowmask.utils.errors import StoppedBeforeStart, StoppedBySignal
from slowmask.utils.stop_signals import STOP_SIGNALS, Forwarder, stopping_at_once


class SignallingStep:
    """Sends itself `signum` during batch number `at` (1-based); an optimizer update
    every `every` batches."""

    def __init__(self, at, every: int = 1, signum: int = signal.SIGUSR1) -> None:
        self.at = at if isinstance(at, tuple) else (at,)
        self.every, self.signum, self.seen = every, signum, 0

    @property
    def pending_gradients(self) -> bool:
        return self.seen % self.every != 0

    def __call__(self, batch):
        self.seen += 1
        if self.seen in self.at:
            os.kill(os.getpid(), self.signum)
        return {}


class Moments(Hook):
    def __init__(self):
        self.epochs_ended, self.trained = 0, False

    def after_epoch(self, loop):
        self.epochs_ended += 1

    def after_train(self, loop):
        self.trained = True


def run(step, batches=6, signals=(signal.SIGTERM, signal.SIGUSR1)):
    saved, moments = [], Moments()
    stop = StopOnSignal(lambda epoch, iteration: saved.append((epoch, iteration)) or "ckpt.pyth", signals)
    loop = TrainLoop(step, list(range(batches)), [moments, stop], max_epoch=2)
    with stop.catching_signals():
        loop.run()
    return saved, moments, stop


def test_a_signal_stops_after_the_current_step_with_a_checkpoint():
    step = SignallingStep(at=3)
    saved, moments, stop = run(step)
    assert saved == [(0, 3)] and step.seen == 3
    assert moments.epochs_ended == 0 and moments.trained
    message = "stopped on SIGUSR1 at epoch 1, after iteration 3; checkpoint: ckpt.pyth; exit status 75"
    assert message in str(stop.stopped)


def test_the_stop_waits_for_the_pending_optimizer_update():
    step = SignallingStep(at=3, every=2, signum=signal.SIGTERM)
    saved, _, stop = run(step)
    assert saved == [(0, 4)] and step.seen == 4 and "SIGTERM" in str(stop.stopped)


def test_a_signal_in_the_last_step_of_an_epoch_stops_at_its_end():
    step = SignallingStep(at=6)
    saved, moments, _ = run(step)
    assert saved == [(0, None)] and step.seen == 6 and moments.epochs_ended == 1


def test_handlers_are_restored_and_run_from_raises_training_preempted():
    before = signal.getsignal(signal.SIGUSR1)
    stop = StopOnSignal(lambda epoch, iteration: "ckpt.pyth")
    loop = TrainLoop(SignallingStep(at=2), list(range(4)), [stop], max_epoch=1)
    with pytest.raises(TrainingPreempted, match="after iteration 2") as raised:
        run_from(loop, ResumePoint(), stop)
    assert raised.value.checkpoint == "ckpt.pyth"
    assert signal.getsignal(signal.SIGUSR1) == before


def test_a_handler_installed_before_the_run_gets_the_signal_after_the_checkpoint():
    # submitit installs its requeue handler for SIGUSR2 before the task runs.
    calls = []
    saved = []

    def requeue(signum, frame):
        calls.append((signum, list(saved)))

    before = signal.signal(signal.SIGUSR2, requeue)
    try:
        stop = StopOnSignal(lambda epoch, iteration: saved.append((epoch, iteration)) or "ckpt.pyth")
        loop = TrainLoop(SignallingStep(at=2, signum=signal.SIGUSR2), list(range(4)), [stop], max_epoch=1)
        with pytest.raises(TrainingPreempted, match="stopped on SIGUSR2"):
            run_from(loop, ResumePoint(), stop)
        assert calls == [(signal.SIGUSR2, [(0, 2)])]  # once, with the checkpoint already written
        assert signal.getsignal(signal.SIGUSR2) is requeue
    finally:
        signal.signal(signal.SIGUSR2, before)


def test_default_handlers_are_not_called_after_the_stop():
    saved, _, stop = run(SignallingStep(at=2, signum=signal.SIGUSR2),
                         signals=(signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2))
    assert saved == [(0, 2)]
    stop.hand_over()  # SIGUSR2's previous handler is SIG_DFL: nothing to call, the process lives on


def _rank(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        step = SignallingStep(at=3 if rank == 1 else 0)  # only rank 1 receives the signal
        saved = []
        save = (lambda epoch, iteration: saved.append([epoch, iteration]) or "ckpt.pyth") if rank == 0 else None
        stop = StopOnSignal(save)
        with stop.catching_signals():
            TrainLoop(step, list(range(6)), [stop], max_epoch=1).run()
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"steps": step.seen, "saved": saved, "stopped": str(stop.stopped)}, f)
    finally:
        dist.destroy_process_group()


def test_all_ranks_stop_after_the_same_iteration_and_rank_0_writes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["steps"] for r in ranks] == [3, 3]
    assert ranks[0]["saved"] == [[0, 3]] and ranks[1]["saved"] == []
    assert "another rank's stop signal" in ranks[0]["stopped"] and "SIGUSR1" in ranks[1]["stopped"]


@pytest.fixture
def ctrl_c_reaches_python():
    """SIGINT with Python's own handler, as in a terminal: a shell starts background jobs
    (`cmd &`) with SIGINT ignored, and a run leaves an ignored SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_checkpoints_like_sigterm_and_is_not_handed_to_keyboard_interrupt(ctrl_c_reaches_python):
    saved, _, stop = run(SignallingStep(at=2, signum=signal.SIGINT), signals=STOP_SIGNALS)
    assert saved == [(0, 2)] and "stopped on SIGINT at epoch 1, after iteration 2" in str(stop.stopped)
    stop.hand_over()  # Python's SIGINT handler would raise KeyboardInterrupt here


def test_a_second_ctrl_c_aborts_at_once_without_the_checkpoint(ctrl_c_reaches_python):
    step = SignallingStep(at=(1, 2), every=4, signum=signal.SIGINT)  # the stop waits for batch 4
    with pytest.raises(StoppedBySignal, match="aborted by a second SIGINT while stopping on SIGINT") as raised:
        run(step, signals=STOP_SIGNALS)
    assert step.seen == 2 and raised.value.exit_status == 130


class SignallingLoader:
    """A loader that is sent `signum` while it starts (as workers start or data is read)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __len__(self):
        return 4

    def __iter__(self):
        os.kill(os.getpid(), self.signum)
        yield from range(4)


def test_a_signal_before_the_first_step_stops_at_once_without_a_checkpoint():
    saved, step = [], SignallingStep(at=())
    stop = StopOnSignal(lambda epoch, iteration: saved.append(epoch))
    loop = TrainLoop(step, SignallingLoader(signal.SIGUSR2), [stop], max_epoch=1)
    with pytest.raises(StoppedBeforeStart, match="stopped by SIGUSR2 before the first training step") as raised:
        run_from(loop, ResumePoint(), stop)
    assert step.seen == 0 and saved == [] and raised.value.exit_status == 128 + signal.SIGUSR2


def test_stopping_at_once_raises_after_the_handler_before_and_restores_it():
    calls, term = [], signal.getsignal(signal.SIGTERM)

    def requeue(signum, frame):
        calls.append(signum)

    before = signal.signal(signal.SIGUSR1, requeue)
    try:
        with pytest.raises(StoppedBeforeStart) as raised:
            with stopping_at_once():
                os.kill(os.getpid(), signal.SIGUSR1)
        assert calls == [signal.SIGUSR1] and raised.value.exit_status == 128 + signal.SIGUSR1
        assert signal.getsignal(signal.SIGUSR1) is requeue and signal.getsignal(signal.SIGTERM) == term
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_an_ignored_ctrl_c_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a shell's background job
    try:
        with stopping_at_once():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_waiting_parent_passes_its_signals_on_once_the_children_exist():
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\nprint('ready', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        with Forwarder() as forward:
            os.kill(os.getpid(), signal.SIGTERM)  # before the children are named: kept, not lost
            assert child.poll() is None
            forward.to([child.pid])
            assert child.wait(timeout=10) == 7
    finally:
        child.kill()
        child.wait()


def test_outside_the_main_thread_a_warning_says_signals_will_not_stop_the_run(caplog):
    stop = StopOnSignal(None)
    before = signal.getsignal(signal.SIGTERM)

    def enter():
        with stop.catching_signals():
            assert signal.getsignal(signal.SIGTERM) == before

    thread = threading.Thread(target=enter)
    with caplog.at_level("WARNING"):
        thread.start()
        thread.join()
    assert "outside the main thread: SIGTERM/SIGUSR1/SIGUSR2/SIGINT will not stop it with a checkpoint" in caplog.text
