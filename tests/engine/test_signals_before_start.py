"""A stop signal before the first training step ends the run at once with exit 128 + the
signal (nothing to checkpoint); Ctrl-C during training checkpoints like SIGTERM; launch
arguments that cannot work fail before any process starts; a rendezvous that runs out of
time is a DistributedError naming the address and the rank."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist
from torch.multiprocessing import ProcessRaisedException

from slowmask import checkpoint
from slowmask.engine.distributed import DistributedError, Place, join_process_group, leave_process_group, self_test
from slowmask.engine.launch import init_method_problem
from slowmask.utils.errors import expected_stop
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

RUN_NET = os.path.join(REPO, "tools", "run_net.py")
PT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
QUICK = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0", "LOG_PERIOD", "1",
         "DATA.TRAIN_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40", "NUM_GPUS", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
WAIT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(condition, process):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process.poll() is None, f"the run ended (status {process.returncode}) too early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def start(args):
    """run_net in its own session (the test signals it alone, or its group) with Ctrl-C
    not ignored, whatever the shell that started pytest does with it."""
    return subprocess.Popen([sys.executable, RUN_NET, *args], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_sigterm_while_a_shard_waits_at_the_rendezvous_ends_the_job_within_5_s(demo_data_dir, tmp_path):
    port = free_port()  # shard 1 never starts: shard 0's process waits for it
    process = start(["--cfg", PT_CFG, "--init_method", f"tcp://127.0.0.1:{port}", "--num_shards", "2",
                     "--shard_id", "0", "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                     "TRAIN.BATCH_SIZE", "8", *QUICK])
    wait_for(lambda: listening(port), process)  # the spawned rank 0 serves the rendezvous
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)  # to the waiting parent only, as `kill PID` does
    _, err = process.communicate(timeout=WAIT_S)
    took = time.monotonic() - sent
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert took < 5, f"took {took:.1f} s"
    last = err.strip().splitlines()[-1]
    assert last.startswith("StoppedBeforeStart: stopped by SIGTERM before the first training step")
    assert not (tmp_path / "checkpoints").exists()


def spawned_ranks(pid: int):
    """The children of `pid` that torch's spawn started (not multiprocessing's helpers)."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        pids = listing.read().split()
    ranks = []
    for child in pids:
        try:
            with open(f"/proc/{child}/cmdline") as cmdline:
                if "spawn_main" in cmdline.read():
                    ranks.append(child)
        except FileNotFoundError:  # ended meanwhile
            pass
    return ranks


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"), reason="needs Linux /proc")
def test_sigterm_while_the_spawned_processes_start_ends_the_job_with_143(demo_data_dir, tmp_path):
    process = start(["--cfg", PT_CFG, "--init_method", f"tcp://127.0.0.1:{free_port()}", "--num_shards", "2",
                     "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path), "TRAIN.BATCH_SIZE", "8",
                     *QUICK])
    wait_for(lambda: spawned_ranks(process.pid), process)  # the rank is still importing: no handlers yet
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("StoppedBeforeStart: stopped by SIGTERM before the first")
    assert "terminated with signal SIGTERM" in (tmp_path / "stdout.log").read_text()  # it died of the signal


def test_ctrl_c_before_the_first_step_ends_a_single_process_run_with_130(demo_data_dir, tmp_path):
    process = start(["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                     "TRAIN.BATCH_SIZE", "2", *QUICK])
    log = tmp_path / "stdout.log"
    wait_for(lambda: log.exists() and "read 16 videos" in log.read_text(), process)  # in the preflight
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 130, err[-3000:]
    assert "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("StoppedBeforeStart: stopped by SIGINT before the first")
    assert not (tmp_path / "checkpoints").exists()


def test_ctrl_c_during_training_writes_a_checkpoint_and_exits_75(demo_data_dir, tmp_path):
    process = start(["--cfg", PT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                     "TRAIN.BATCH_SIZE", "2", *QUICK])
    log = tmp_path / "stdout.log"
    wait_for(lambda: log.exists() and "iter: 2/8" in log.read_text(), process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 75, err[-3000:]
    assert "KeyboardInterrupt" not in err and "stopped on SIGINT at epoch 1, after iteration" in err
    (written,) = checkpoint.epoch_checkpoints(str(tmp_path))
    assert ".iter_" in written


@pytest.mark.parametrize("launch_args, message", [
    (["--num_shards", "2", "--shard_id", "5"],
     "SHARD_ID (--shard_id) is 5 but NUM_SHARDS (--num_shards) is 2: the machines are numbered 0 to 1"),
    (["--num_shards", "0"], "NUM_SHARDS (--num_shards) is 0; it counts the machines of the job: 1 or more"),
    (["--num_shards", "2", "--init_method", "localhost:9999"],
     "--init_method 'localhost:9999' is not an address the processes can meet at; use tcp://HOST:PORT"),
    (["--num_shards", "2", "--init_method", "tcp://localhost:99999"], "--init_method 'tcp://localhost:99999' is not"),
])
def test_launch_arguments_that_cannot_work_fail_at_once(launch_args, message, tmp_path, capsys):
    started = time.monotonic()
    status = run_net.main(["--cfg", PT_CFG, *launch_args, "OUTPUT_DIR", str(tmp_path), "TRAIN.BATCH_SIZE", "8",
                           *QUICK])
    assert status == 2 and time.monotonic() - started < 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line
    assert not os.listdir(tmp_path)


def test_env_init_method_needs_its_variables():
    assert init_method_problem("env://", {"MASTER_ADDR": "10.0.0.1"}) == (
        "--init_method env:// reads MASTER_PORT from the environment, which are not set")
    assert init_method_problem("env://", {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}) is None
    assert init_method_problem("file:///shared/rendezvous") is None


def test_a_rendezvous_that_runs_out_of_time_names_the_address_and_the_rank():
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(DistributedError) as raised:
        join_process_group("gloo", address, Place(rank=0, local_rank=0, world_size=2), timeout_s=0.5)
    assert str(raised.value).startswith(
        f"rank 0 of 2 waited at {address} (gloo) until DIST_RENDEZVOUS_TIMEOUT_S ran out: 1 of 2 ranks arrived")
    assert raised.value.exit_status == 5


def relayed(error_line: str) -> ProcessRaisedException:
    """The error of a spawned process as its parent receives it."""
    return ProcessRaisedException("\n\n-- Process 0 terminated with the following error:\nTraceback (most recent "
                                  f"call last):\n  File \"x.py\", line 1, in f\n{error_line}\n", 0, 1234)


def test_the_parent_ends_with_the_status_of_a_childs_stop():
    stopped = "slowmask.utils.errors.StoppedBeforeStart: stopped by SIGUSR1 before the first training step"
    status = (128 + signal.SIGUSR1, "StoppedBeforeStart: stopped by SIGUSR1 before the first training step")
    assert expected_stop(relayed(stopped)) == status
    # As the child relays it: chained to the Exception that torch's spawn passes on.
    chained = (f"{stopped}\n\nThe above exception was the direct cause of the following exception:\n\n"
               "Traceback (most recent call last):\n  File \"launch.py\", line 9, in _spawned\nRuntimeError: rank 0 stopped")
    assert expected_stop(relayed(chained)) == status
    aborted = "slowmask.utils.errors.StoppedBySignal: aborted by a second SIGINT while stopping on SIGINT"
    assert expected_stop(relayed(aborted))[0] == 130
    timed_out = "slowmask.engine.distributed.DistributedError: rank 1 of 2 waited at tcp://h:1 (gloo)"
    assert expected_stop(relayed(timed_out))[0] == 5


def test_a_failed_collective_self_test_is_a_distributed_error_naming_the_rank(monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    join_process_group("gloo", address, Place(rank=0, local_rank=0, world_size=1), timeout_s=5)
    try:
        def silent_rank(**kwargs):
            raise RuntimeError("Rank 1 failed to pass monitoredBarrier in 2000 ms")

        monkeypatch.setattr(dist, "monitored_barrier", silent_rank)
        with pytest.raises(DistributedError, match=rf"self-test of rank 0 of 1 at {address}: not every rank "
                                                   r"answered within 2 s .*Rank 1 failed") as raised:
            self_test(2, address)
        assert raised.value.exit_status == 5
    finally:
        leave_process_group()
