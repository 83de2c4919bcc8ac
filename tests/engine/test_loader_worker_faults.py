"""A failure in a loader worker ends the training run within seconds: an error raised in a
worker with its own status and one line; a worker killed (as the out-of-memory killer
does) with the mid-epoch checkpoint, exit status 8, and a rerun that resumes there."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from slowmask.data.loader_workers import LoaderWorkerKilled
from slowmask import checkpoint
from slowmask.engine.resume import ResumePoint
from slowmask.engine.train import after_worker_death
from slowmask.utils.errors import EXIT_STATUS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
EXIT_WITHIN_S = 30
POLL_S = 0.05


def command(data_dir, out_dir, *opts):
    """One epoch, two loader workers."""
    return [
        sys.executable, RUN_NET, "--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", str(data_dir), "OUTPUT_DIR",
        str(out_dir), "DATA_LOADER.NUM_WORKERS", "2", "TRAIN.BATCH_SIZE", "2", "SOLVER.MAX_EPOCH", "1",
        "SOLVER.WARMUP_EPOCHS", "0", "LOG_PERIOD", "1", *opts,
    ]


def demo_rows(demo_data_dir):
    with open(os.path.join(demo_data_dir, "train.csv")) as f:
        return f.read().splitlines()


def worker_pids(pid):
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(word) for word in listed.split()]


def test_an_unreadable_video_in_a_worker_ends_the_run_with_status_3_and_one_line(demo_data_dir, tmp_path):
    """The issue's case: a readable video, 14 rows of a random 5000-byte file, then
    readable videos; no retries. The run used to print the error, then hang forever."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(5000))
    rows = demo_rows(demo_data_dir)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "train.csv").write_text("\n".join([rows[0]] + [f"{junk} 0"] * 14 + rows[1:]) + "\n")
    out_dir = tmp_path / "out"
    start = time.monotonic()
    done = subprocess.run(command(data_dir, out_dir, "DATA_LOADER.NUM_RETRIES", "0"), env=ENV,
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert done.returncode == EXIT_STATUS["data"], done.stderr[-3000:]
    assert took < EXIT_WITHIN_S
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(r"NoReadableVideoError: item \d+: none of the 1 videos tried could be read "
                    r"\(DATA_LOADER.NUM_RETRIES = 0\): .*junk.mp4 \(DecodeError\)", lines[0])
    assert lines[0].endswith(f"(traceback in {out_dir / 'stdout.log'})")
    log = (out_dir / "stdout.log").read_text()
    assert "raised in a data-loader worker: Caught NoReadableVideoError in DataLoader worker process" in log
    assert checkpoint.epoch_checkpoints(str(out_dir)) == []


def test_a_killed_worker_writes_the_mid_epoch_checkpoint_exits_8_and_the_rerun_resumes_there(
    demo_data_dir, tmp_path
):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "train.csv").write_text("\n".join(demo_rows(demo_data_dir)) + "\n")  # 8 iterations
    run = command(data_dir, tmp_path)
    process = subprocess.Popen(run, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "stdout.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "epoch: 1/1 iter: 2/8" in log.read_text()):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the run never reached iteration 2"
        time.sleep(POLL_S)
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    killed = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert time.monotonic() - killed < EXIT_WITHIN_S
    assert process.returncode == EXIT_STATUS["worker"] == 8, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    found = re.match(
        rf"LoaderWorkerKilled: data-loader worker \(pid {workers[0]}\) ended by SIGKILL at epoch 1, after "
        r"iteration (\d+); checkpoint: (\S+); exit status 8; run the same command again \(TRAIN.AUTO_RESUME True\) "
        r"to continue; a SIGKILL is usually the kernel's out-of-memory killer", lines[0])
    assert found, lines[0]
    iteration, path = int(found.group(1)), found.group(2)
    assert 2 <= iteration < 8
    assert path == checkpoint.checkpoint_path(str(tmp_path), 1, iteration)
    assert checkpoint.epoch_checkpoints(str(tmp_path)) == [path]

    rerun = subprocess.run(run, env=ENV, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {path}" in log.read_text()
    assert os.path.exists(checkpoint.checkpoint_path(str(tmp_path), 1))


class Loop:
    """What after_worker_death reads of a TrainLoop."""

    def __init__(self, epoch, batches_done, pending=False):
        self.epoch, self.batches_done = epoch, batches_done
        self.step = type("Step", (), {"pending_gradients": pending})()


@pytest.mark.parametrize("loop, point, saved, message", [
    (Loop(2, 5), ResumePoint(1, 0), [(2, 5)], "at epoch 3, after iteration 5; checkpoint: saved(2, 5);"),
    (Loop(2, 0), ResumePoint(1, 0), [(1, None)], "at epoch 3, before its first iteration; checkpoint: saved(1, None);"),
    (Loop(1, 3), ResumePoint(1, 3), [], "nothing was trained since the run started, no checkpoint written;"),
    (Loop(1, 5, pending=True), ResumePoint(0, 0), [], "no checkpoint written inside a gradient-accumulation cycle"),
])
def test_after_a_worker_death_the_checkpoint_is_of_the_last_completed_step_when_there_is_one(
    loop, point, saved, message
):
    calls = []

    def save(epoch, iteration):
        calls.append((epoch, iteration))
        return f"saved({epoch}, {iteration})"

    stopped = after_worker_death(LoaderWorkerKilled(1234, "SIGKILL"), loop, point, save)
    assert calls == saved
    assert str(stopped).startswith("data-loader worker (pid 1234) ended by SIGKILL ")
    assert message in str(stopped)
    assert stopped.exit_status == 8
