"""TRAIN.SHARDING on 2 CPU processes (gloo): fsdp and hsdp train MAE, MaskFeat and V-JEPA
(its EMA target encoder sharded too) to the weights DDP trains to, a sharded run stopped
by SIGTERM resumes on 1 process exactly, and a sharded checkpoint consolidates into a
.pyth that fine-tunes. The runs that need the same two processes share one torchrun
(run_jobs.py), so that the processes start once."""

import copy
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy
from torch.distributed.tensor import DTensor

from slowmask import checkpoint
from slowmask.config import load_config
from slowmask.engine.hooks import EXIT_PREEMPTED
from slowmask.engine.sharding import shard_model, sharding_problems
from slowmask.methods import build_model
from slowmask.models.ema import ema_update_
from slowmask.utils.errors import EXIT_STATUS
from numerics import assert_same_tensors
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_JOBS = os.path.join(REPO, "tests", "engine", "run_jobs.py")
MAE_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_MAE_PT.yaml")
MASKFEAT_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_MaskFeat_PT.yaml")
FT_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_FT.yaml")
MVD_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_MVD_PT.yaml")
VJEPA_CFG = os.path.join(REPO, "configs", "demo", "ViT_tiny_VJEPA_PT.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
EPOCHS = 3
# 16 videos, 8 a batch: 2 iterations an epoch, 4 videos a process.
OPTS = ["NUM_GPUS", "0", "TRAIN.BATCH_SIZE", "8", "SOLVER.MAX_EPOCH", str(EPOCHS), "SOLVER.WARMUP_EPOCHS", "0.5",
        "DATA_LOADER.NUM_WORKERS", "0", "LOG_PERIOD", "1", "TRAIN.CHECKPOINT_PERIOD", "1"]
# (config, TRAIN.SHARDING) of the runs on two processes; their output folder is named "<config>-<sharding>".
run_net = load_tool("run_net")
RUNS = [(MAE_CFG, "none"), (MAE_CFG, "fsdp"), (MAE_CFG, "hsdp"), (MASKFEAT_CFG, "none"), (MASKFEAT_CFG, "fsdp"),
        (VJEPA_CFG, "none"), (VJEPA_CFG, "fsdp")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_name(cfg: str, sharding: str) -> str:
    return f"{os.path.basename(cfg)[:-len('.yaml')]}-{sharding}"


def run_args(cfg, out_dir, data_dir, *opts):
    return ["--cfg", cfg, "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), *OPTS, *opts]


@pytest.fixture(scope="module")
def two_process_runs(demo_data_dir, tmp_path_factory):
    """The output folders of RUNS; "mvd": MVD under fsdp in bfloat16 with activation
    checkpointing, its teacher the sharded MaskFeat run's last folder, for an epoch;
    "finetuned": the classifier of FT_CFG under fsdp from the sharded MAE run's last
    folder, validated after its one epoch;
    "continued": MAE under fsdp from the unsharded run's epoch-2 file; and "stopped": MAE
    under fsdp stopped by SIGTERM after its first checkpoint. All run by one torchrun of
    2 CPU processes."""
    root = tmp_path_factory.mktemp("sharding")
    jobs = [{"argv": run_args(cfg, root / run_name(cfg, sharding), demo_data_dir, "TRAIN.SHARDING", sharding)}
            for cfg, sharding in RUNS]
    teacher = checkpoint.checkpoint_path(str(root / run_name(MASKFEAT_CFG, "fsdp")), EPOCHS, sharded=True)
    jobs.append({"argv": run_args(MVD_CFG, root / "mvd", demo_data_dir, "TRAIN.SHARDING", "fsdp", "SOLVER.MAX_EPOCH",
                                  "1", "TRAIN.MIXED_PRECISION", "True", "MODEL.ACT_CHECKPOINT", "True",
                                  "TEACHER.CFG_FILE", MASKFEAT_CFG, "TEACHER.CHECKPOINT_FILE_PATH", teacher)})
    pretrained = checkpoint.checkpoint_path(str(root / run_name(MAE_CFG, "fsdp")), EPOCHS, sharded=True)
    jobs.append({"argv": run_args(FT_CFG, root / "finetuned", demo_data_dir, "TRAIN.SHARDING", "fsdp",
                                  "SOLVER.MAX_EPOCH", "1", "TRAIN.EVAL_PERIOD", "1", "TEST.ENABLE", "False",
                                  "TRAIN.CHECKPOINT_FILE_PATH", pretrained)})
    ddp_epoch_2 = checkpoint.checkpoint_path(str(root / run_name(MAE_CFG, "none")), EPOCHS - 1)
    jobs.append({"argv": run_args(MAE_CFG, root / "continued", demo_data_dir, "TRAIN.SHARDING", "fsdp",
                                  "TRAIN.CHECKPOINT_FILE_PATH", ddp_epoch_2)})
    jobs.append({"argv": run_args(MAE_CFG, root / "stopped", demo_data_dir, "TRAIN.SHARDING", "fsdp",
                                  "TRAIN.CHECKPOINT_PERIOD_ITERS", "1"),
                 "sigterm_after": checkpoint.checkpoint_path(str(root / "stopped"), 1, 1, sharded=True),
                 "status": EXIT_PREEMPTED})
    (root / "jobs.json").write_text(json.dumps(jobs))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                "--master_port", str(free_port())]
    job = subprocess.run([*torchrun, RUN_JOBS, str(root / "jobs.json")], capture_output=True, text=True, timeout=600,
                         env=ENV)
    assert job.returncode == 0, job.stderr[-3000:]
    return root


def final_weights(out_dir):
    """The model of the run's last checkpoint, a file or a sharded folder read whole."""
    return checkpoint.read_any_checkpoint(checkpoint.last_checkpoint(str(out_dir)))["model_state"]


# MAE: 3 encoder blocks and 1 decoder's; V-JEPA: 3 of the encoder, 3 of its EMA target encoder, 1 of the predictor.
@pytest.mark.parametrize("cfg, blocks", [(MAE_CFG, 4), (MASKFEAT_CFG, 3), (VJEPA_CFG, 7)])
def test_fsdp_trains_to_the_weights_ddp_trains_to(two_process_runs, cfg, blocks):
    sharded, ddp = two_process_runs / run_name(cfg, "fsdp"), two_process_runs / run_name(cfg, "none")
    names = [f"checkpoint_epoch_{epoch:05d}" for epoch in range(1, EPOCHS + 1)]
    assert sorted(os.listdir(sharded / "checkpoints")) == names  # folders, no temporary left
    assert sorted(os.listdir(sharded / "checkpoints" / names[-1])) == [".metadata", "__0_0.distcp", "__1_0.distcp",
                                                                         "run_state.pyth"]
    assert f"sharded {blocks} blocks and the root over a mesh of 2 processes" in (sharded / "stdout.log").read_text()
    assert_same_tensors(final_weights(sharded), final_weights(ddp), rel=1e-3)


def test_fine_tuning_under_fsdp_starts_from_a_folder_and_keeps_its_best_as_one(two_process_runs):
    out = two_process_runs / "finetuned"
    pretrained = checkpoint.checkpoint_path(str(two_process_runs / run_name(MAE_CFG, "fsdp")), EPOCHS, sharded=True)
    encoder = [name for name in final_weights(two_process_runs / run_name(MAE_CFG, "fsdp"))
               if not name.startswith(checkpoint.PRETRAINING_ONLY)]
    log = (out / "stdout.log").read_text()
    assert f"initialized from {pretrained}: {len(encoder)} tensors loaded as they are" in log
    assert sorted(os.listdir(out / "checkpoints")) == ["checkpoint_best", "checkpoint_epoch_00001"]
    best = checkpoint.read_any_checkpoint(str(out / "checkpoints" / "checkpoint_best"))["model_state"]
    assert_same_tensors(best, final_weights(out), rel=0)
    model = classifier(seed=1)
    checkpoint.load_weights(str(out / "checkpoints" / "checkpoint_best"), model)
    assert_same_tensors(model.state_dict(), best, rel=0)


def test_a_run_written_without_sharding_goes_on_under_fsdp_from_its_file(two_process_runs):
    """Its epoch-2 file (whole weights and AdamW moments) resumed by a sharded run: the
    shards of both are cut from it, and epoch 3 ends where the unsharded run's does."""
    continued, ddp = two_process_runs / "continued", two_process_runs / run_name(MAE_CFG, "none")
    log = (continued / "stdout.log").read_text()
    assert f"resumed from {checkpoint.checkpoint_path(str(ddp), EPOCHS - 1)} (epoch {EPOCHS - 1}, at its end)" in log
    assert sorted(os.listdir(continued / "checkpoints")) == [f"checkpoint_epoch_{EPOCHS:05d}"]
    assert_same_tensors(final_weights(continued), final_weights(ddp), rel=1e-3)


def test_hsdp_on_two_machines_of_one_process_trains_as_ddp(two_process_runs):
    hybrid = two_process_runs / run_name(MAE_CFG, "hsdp")
    assert "sharded 4 blocks and the root over a mesh of 2x1 processes" in (hybrid / "stdout.log").read_text()
    assert_same_tensors(final_weights(hybrid), final_weights(two_process_runs / run_name(MAE_CFG, "none")), rel=1e-3)


def test_distillation_under_fsdp_in_bfloat16_shards_the_student_only(two_process_runs):
    """The frozen teacher (3 blocks, outside the module tree) is neither sharded nor saved;
    the student's 3 encoder blocks and 1 decoder block are; weights stay float32."""
    out = two_process_runs / "mvd"
    log = (out / "stdout.log").read_text()
    teacher = checkpoint.checkpoint_path(str(two_process_runs / run_name(MASKFEAT_CFG, "fsdp")), EPOCHS, sharded=True)
    assert f"initialized from {teacher}" in log
    assert "mixed precision: torch.bfloat16 autocast on cpu" in log
    assert "sharded 4 blocks and the root over a mesh of 2 processes" in log
    weights = final_weights(out)
    assert not [name for name in weights if "teacher" in name]
    assert {value.dtype for value in weights.values()} == {torch.float32}
    assert not checkpoint.nonfinite_tensors(weights)


def test_sharded_run_stopped_by_sigterm_resumes_on_one_process_with_the_uninterrupted_weights(two_process_runs,
                                                                                            demo_data_dir):
    out = two_process_runs / "stopped"
    log = (out / "stdout.log").read_text()
    assert "stopped on SIGTERM at epoch" in log
    stopped = checkpoint.last_checkpoint(str(out))
    assert os.path.isdir(stopped) and stopped < checkpoint.checkpoint_path(str(out), EPOCHS, sharded=True)
    # The same command on 1 process: no sharding, the whole batch in one process.
    one = run_args(MAE_CFG, out, demo_data_dir, "TRAIN.SHARDING", "none", "NUM_SHARDS", "1")
    assert run_net.main(one) == 0
    assert f"resumed from {stopped}" in (out / "stdout.log").read_text()
    uninterrupted = final_weights(two_process_runs / run_name(MAE_CFG, "fsdp"))
    assert_same_tensors(final_weights(out), uninterrupted)


def test_consolidated_sharded_checkpoint_fine_tunes_through_checkpoint_file_path(
    two_process_runs, demo_data_dir, tmp_path
):
    folder = checkpoint.checkpoint_path(str(two_process_runs / run_name(MAE_CFG, "fsdp")), EPOCHS, sharded=True)
    whole = tmp_path / "mae.pyth"
    assert checkpoint.consolidate_checkpoint(folder, str(whole)) == str(whole)
    assert sorted(os.listdir(tmp_path)) == ["mae.pyth"]  # no temporary left
    state = checkpoint.read_checkpoint(str(whole))
    assert state["epoch"] == EPOCHS - 1
    assert_same_tensors(state["model_state"], final_weights(two_process_runs / run_name(MAE_CFG, "none")), rel=1e-3)
    out = tmp_path / "ft"
    assert run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out), *OPTS,
                         "SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False",
                         "TRAIN.CHECKPOINT_FILE_PATH", str(whole)]) == 0
    log = (out / "stdout.log").read_text()
    encoder = [name for name in state["model_state"] if not name.startswith(checkpoint.PRETRAINING_ONLY)]
    assert f"initialized from {whole}: {len(encoder)} tensors loaded as they are" in log
    assert "does not fit this model's stem" not in log
    # The folder itself initializes a classifier as its consolidated file does.
    from_folder, from_file = (classifier(seed=0) for _ in range(2))
    checkpoint.load_pretrained(folder, from_folder)
    checkpoint.load_pretrained(str(whole), from_file)
    for name, value in from_file.state_dict().items():
        assert torch.equal(from_folder.state_dict()[name], value), name


def classifier(seed: int) -> torch.nn.Module:
    """The fine-tuning model of FT_CFG, its new head drawn from `seed`."""
    torch.manual_seed(seed)
    return build_model(load_config(FT_CFG, ["NUM_GPUS", "0"]))


def test_sharding_on_one_process_is_refused_before_anything_is_built(demo_data_dir, tmp_path, capsys):
    assert run_net.main(run_args(MAE_CFG, tmp_path, demo_data_dir, "TRAIN.SHARDING", "fsdp")) == EXIT_STATUS["config"]
    assert ("TRAIN.SHARDING fsdp splits the model over the job's processes, and this job has one (max(1, NUM_GPUS) x "
            "NUM_SHARDS): set TRAIN.SHARDING none, or start more processes") in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("opts, problem", [
    (["TRAIN.SHARDING", "zero3"], "TRAIN.SHARDING is 'zero3'; supported: 'none', 'fsdp', 'hsdp'"),
    (["TRAIN.SHARDING", "hsdp", "NUM_GPUS", "8"], "TRAIN.SHARDING hsdp replicates the model across machines and "
                                                  "NUM_SHARDS is 1: use TRAIN.SHARDING fsdp on one machine"),
    (["TRAIN.SHARDING", "fsdp", "NUM_GPUS", "2", "TRAIN.MIXED_PRECISION", "True", "TRAIN.MIXED_PRECISION_DTYPE",
      "float16"], "TRAIN.SHARDING trains in bfloat16 or float32: float16 needs a gradient scaler over sharded "
                  "gradients, which slowmask has not got; set TRAIN.MIXED_PRECISION_DTYPE bfloat16 (a GPU of compute "
                  "capability 8.0 or more) or TRAIN.MIXED_PRECISION False"),
])
def test_what_sharding_cannot_do_is_one_line_each(opts, problem):
    assert sharding_problems(load_config(MAE_CFG, opts)) == [problem]
    assert sharding_problems(load_config(MAE_CFG, ["TRAIN.SHARDING", "fsdp", "NUM_GPUS", "2"])) == []


def test_the_moving_average_of_a_sharded_encoder_moves_its_shards(tmp_path):
    """models/ema.py's update (V-JEPA's target encoder, MODEL.EMA) on fully_shard's DTensors,
    in a job of one process: the same numbers as on whole tensors."""
    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    average = copy.deepcopy(source)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    expected = copy.deepcopy(average)
    ema_update_(expected, source, 0.9)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        for module in (source, average):
            shard_model(module, mesh, MixedPrecisionPolicy(), blocks=(torch.nn.Linear,))
        ema_update_(average, source, 0.9)
        moved = {name: value.full_tensor() for name, value in average.state_dict().items()}
        assert {type(value) for value in average.state_dict().values()} == {DTensor}
    finally:
        dist.destroy_process_group()
    for name, value in expected.state_dict().items():
        assert torch.equal(moved[name], value), name
