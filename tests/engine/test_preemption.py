"""A training run killed or preempted part-way through an epoch resumes exactly: the
restarted run (TRAIN.AUTO_RESUME) ends with the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from slowmask import checkpoint
from slowmask.engine.hooks import EXIT_PREEMPTED

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
POLL_S, WAIT_S = 0.01, 120


def command(data_dir, out_dir, *opts):
    """2 epochs of 8 iterations; drop-path on, so that the global torch RNG matters."""
    return [
        sys.executable, RUN_NET, "--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir),
        "DATA_LOADER.NUM_WORKERS", "0", "TRAIN.BATCH_SIZE", "2", "SOLVER.MAX_EPOCH", "2",
        "SOLVER.WARMUP_EPOCHS", "0.5", "MVIT.DROPPATH_RATE", "0.2", "TRAIN.CHECKPOINT_PERIOD", "1",
        "LOG_PERIOD", "1", *opts,
    ]


def final_weights(out_dir):
    path = checkpoint.checkpoint_path(str(out_dir), 2)
    return torch.load(path, weights_only=True)["model_state"]


def wait_for(condition, process):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process.poll() is None, f"the run ended (status {process.returncode}) before the condition held"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(POLL_S)


def assert_same_weights(out_dir, reference):
    weights = final_weights(out_dir)
    assert weights.keys() == reference.keys()
    for name, value in reference.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def uninterrupted(demo_data_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(command(demo_data_dir, out_dir), check=True, env=ENV, capture_output=True)
    return final_weights(out_dir)


def test_killed_mid_epoch_then_auto_resumed_equals_the_uninterrupted_run(demo_data_dir, tmp_path, uninterrupted):
    run = command(demo_data_dir, tmp_path, "TRAIN.CHECKPOINT_PERIOD_ITERS", "2")
    mid_epoch = checkpoint.checkpoint_path(str(tmp_path), 1, 4)
    process = subprocess.Popen(run, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(mid_epoch), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(checkpoint.checkpoint_path(str(tmp_path), 1)), "killed too late to test anything"
    subprocess.run(run, check=True, env=ENV, capture_output=True)
    log = (tmp_path / "stdout.log").read_text()
    assert "resumed from" in log and ".iter_" in log
    assert_same_weights(tmp_path, uninterrupted)


def test_sigterm_writes_a_checkpoint_exits_75_and_the_rerun_equals_the_uninterrupted_run(
    demo_data_dir, tmp_path, uninterrupted
):
    """As SLURM does, the signal goes to every process of the job, the loader worker too."""
    run = command(demo_data_dir, tmp_path, "DATA_LOADER.NUM_WORKERS", "1")
    process = subprocess.Popen(run, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    log = tmp_path / "stdout.log"
    wait_for(lambda: log.exists() and "epoch: 1/2 iter: 3/8" in log.read_text(), process)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == EXIT_PREEMPTED, err[-3000:]
    assert "stopped on SIGTERM at epoch 1, after iteration" in err and "TRAIN.AUTO_RESUME" in err
    written = checkpoint.epoch_checkpoints(str(tmp_path))
    assert len(written) == 1 and ".iter_" in written[0] and written[0] in log.read_text()
    subprocess.run(run, check=True, env=ENV, capture_output=True)
    assert_same_weights(tmp_path, uninterrupted)
