"""torchrun's CPU processes (NUM_GPUS 0): the job's size comes from torchrun, each
process one shard, said in an INFO line; a NUM_SHARDS set against it is still refused."""

import os
import socket
import subprocess
import sys

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.engine.launch import check_launch, torchrun_cpu_overrides
from slowmask.utils.logging import read_json_stats
from tool_scripts import DEMO_CFG, REPO

TWO_RANKS = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
TINY = ["NUM_GPUS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", "DATA_LOADER.NUM_WORKERS", "0",
        "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40",
        "TRAIN.BATCH_SIZE", "8", "LOG_PERIOD", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cpu_processes_take_num_shards_from_torchrun_only_when_it_is_left_at_1():
    assert torchrun_cpu_overrides(load_config(DEMO_CFG, ["NUM_GPUS", "0"]), TWO_RANKS) == ["NUM_SHARDS", "2"]
    assert torchrun_cpu_overrides(load_config(DEMO_CFG, ["NUM_GPUS", "0"]), {}) == []  # not torchrun
    assert torchrun_cpu_overrides(load_config(DEMO_CFG, ["NUM_GPUS", "2"]), TWO_RANKS) == []  # GPU processes
    set_to_4 = load_config(DEMO_CFG, ["NUM_GPUS", "0", "NUM_SHARDS", "4"])
    assert torchrun_cpu_overrides(set_to_4, TWO_RANKS) == []
    with pytest.raises(ConfigError) as raised:
        check_launch(set_to_4, "env://", TWO_RANKS)
    assert str(raised.value).endswith(
        "= 4; make them agree (batch size and learning-rate scaling depend on them) (on the CPU each process counts "
        "as a shard: set NUM_SHARDS 2, or leave it at 1 under torchrun)")


def test_torchrun_with_two_cpu_processes_trains_without_num_shards(demo_data_dir, tmp_path):
    out = tmp_path / "out"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    job = subprocess.run([*torchrun, os.path.join(REPO, "tools", "run_net.py"), "--cfg", DEMO_CFG,
                          "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), *TINY],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO})
    assert job.returncode == 0, job.stderr[-3000:]
    log = (out / "stdout.log").read_text()
    assert "torchrun started 2 CPU processes (NUM_GPUS 0): each is one shard, NUM_SHARDS 2" in log
    steps = [stats for stats in read_json_stats(str(out)) if stats["_type"] == "train_iter"]
    assert len(steps) == 2  # 16 videos, 8 per process, 4 per process's batch
    assert os.listdir(out / "checkpoints") == ["checkpoint_epoch_00001.pyth"]
    # torchrun's status is its own; each rank's is kept for a script that requeues on 75
    assert [(out / "exit_status" / f"rank_0000{rank}").read_text() for rank in (0, 1)] == ["0\n", "0\n"]
