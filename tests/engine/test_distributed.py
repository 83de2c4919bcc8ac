"""Several processes on the CPU (gloo): the job equals one process with the whole batch,
and rank 0 logs the job's metrics (means over the ranks), not its own share's."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine.launch import launch
from slowmask.utils.logging import read_json_stats
from numerics import assert_same_tensors

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def overrides(data_dir, out_dir, shards):
    return [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "NUM_GPUS", "0",
        "NUM_SHARDS", str(shards), "TRAIN.BATCH_SIZE", "8", "SOLVER.MAX_EPOCH", "1",
        "SOLVER.WARMUP_EPOCHS", "0.5", "DATA_LOADER.NUM_WORKERS", "0",
        # SGD, not AdamW: Adam rescales gradients that are rounding noise (e.g. of the key
        # biases, to which softmax is blind) into full-size steps that differ between runs.
        "SOLVER.OPTIMIZING_METHOD", "sgd", "LOG_PERIOD", "1",
    ]


def logged(out_dir, name):
    return [s[name] for s in read_json_stats(str(out_dir)) if s["_type"] == "train_iter"]


def final_weights(out_dir):
    return torch.load(checkpoint.last_checkpoint(str(out_dir)), weights_only=True)["model_state"]


def start_pair(data_dir, out_dir, how, env):
    """Two CPU processes of one job: torchrun's, or PySlowFast's two shards of one process."""
    port = str(free_port())
    args = ["--cfg", DEMO_CFG, *overrides(data_dir, out_dir, 2)]
    if how == "torchrun":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_addr", "127.0.0.1", "--master_port", port]
        return [subprocess.Popen([*torchrun, RUN_NET, *args], env=env, stderr=subprocess.PIPE, text=True)]
    init = ["--init_method", f"tcp://127.0.0.1:{port}"]
    return [
        subprocess.Popen([sys.executable, RUN_NET, *init, "--shard_id", str(shard), *args],
                         env=env, stderr=subprocess.PIPE, text=True)
        for shard in (0, 1)
    ]


@pytest.mark.parametrize("how", ["torchrun", "shards"])
def test_two_gloo_processes_equal_one_process_with_the_whole_batch(demo_data_dir, tmp_path, how):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run([sys.executable, RUN_NET, "--cfg", DEMO_CFG, *overrides(demo_data_dir, single, 1)],
                   check=True, env=env, capture_output=True)
    pair = tmp_path / "pair"
    for process in start_pair(demo_data_dir, pair, how, env):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    for name in ("loss", "grad_norm"):
        torch.testing.assert_close(logged(pair, name), logged(single, name), rtol=1e-4, atol=0)
    assert_same_tensors(final_weights(pair), final_weights(single))


def test_torchrun_world_size_must_match_the_config(monkeypatch):
    cfg = load_config(DEMO_CFG, ["NUM_GPUS", "0", "NUM_SHARDS", "1"])
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"WORLD_SIZE=2 .*NUM_SHARDS=1 = 1"):
        launch(cfg, lambda c: None)


def test_rendezvous_where_nobody_listens_names_the_address(monkeypatch):
    from slowmask.engine.distributed import Place, join_process_group

    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=f"rank 1 of 2 could not join the process group at {address}"):
        join_process_group("gloo", address, Place(rank=1, local_rank=1, world_size=2), timeout_s=2)
