"""DATA.CUSTOM_MODULES: a user's file registers its own parts, which `load_config` imports
before anything is built, so that tools/run_net.py trains with them.

Each kind of part is one entry of PARTS: the code a user writes, and the config lines
that choose it: a dataset, a mask, a target and a method."""

import textwrap

import torch

from slowmask.data import DATASET_REGISTRY
from slowmask.masking import MASK_REGISTRY
from slowmask.methods import METHOD_REGISTRY
from slowmask.targets import TARGET_REGISTRY
from slowmask.utils.custom_modules import import_custom_modules
from slowmask.utils import logging as slowmask_logging
from slowmask.utils.logging import read_json_stats
from tool_scripts import DEMO_CFG, load_tool

run_net = load_tool("run_net")

HEADER = """
import os
import torch
from slowmask.data import DATASET_REGISTRY, ClipDataset, read_video_list
from slowmask.masking import MASK_REGISTRY
from slowmask.methods import METHOD_REGISTRY, MaskFeat
from slowmask.targets import TARGET_REGISTRY, PixelTarget

CALLS = []  # the kinds of part called, in order, for the test to read
"""
# kind -> (the user's code, the config lines that choose it)
PARTS = {
    "dataset": ("""
@DATASET_REGISTRY.register()
class FourVideos(ClipDataset):
    @classmethod
    def list_videos(cls, data_dir, split):
        CALLS.append("dataset")
        return read_video_list(os.path.join(data_dir, split + ".csv"))[:4]
""", ["TRAIN.DATASET", "fourvideos"]),
    "mask": ("""
@MASK_REGISTRY.register(name="first_row")
class FirstRow:
    def __init__(self, grid):
        self.grid = tuple(grid)

    @classmethod
    def from_config(cls, cfg, grid, mask_ratio):
        return cls(grid)

    def __call__(self, generator):
        CALLS.append("mask")
        mask = torch.zeros(self.grid, dtype=torch.bool)
        mask[:, 0] = True
        return mask
""", ["AUG.MASK_TYPE", "first_row"]),
    "target": ("""
@TARGET_REGISTRY.register(name="negated_pixels")
class NegatedPixels(PixelTarget):
    def forward(self, clip, grid):
        CALLS.append("target")
        return super().forward(-clip, grid)
""", ["MASK.TARGET", "negated_pixels"]),
    "method": ("""
@METHOD_REGISTRY.register(name="HalfLossMaskFeat")
class HalfLossMaskFeat(MaskFeat):
    def forward(self, clip, mask):
        CALLS.append("method")
        out = super().forward(clip, mask)
        return {**out, "loss": out["loss"] / 2}
""", ["MODEL.MODEL_NAME", "HalfLossMaskFeat"]),
}
REGISTERED = {"dataset": (DATASET_REGISTRY, "FourVideos"), "mask": (MASK_REGISTRY, "first_row"),
              "target": (TARGET_REGISTRY, "negated_pixels"), "method": (METHOD_REGISTRY, "HalfLossMaskFeat")}
ONE_STEP = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.0",
            "TRAIN.BATCH_SIZE", "4", "LOG_PERIOD", "1", "DATA.TRAIN_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40"]


def test_a_users_file_registers_every_kind_of_part_and_run_net_trains_a_step_with_them(
        demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(slowmask_logging, "_log_file", None)  # restored after: later tools log to the console
    plugin = tmp_path / "my_parts.py"
    plugin.write_text(HEADER + "".join(textwrap.dedent(code) for code, _ in PARTS.values()))
    choices = [word for _, lines in PARTS.values() for word in lines]
    out = tmp_path / "out"
    for registry, name in REGISTERED.values():
        assert name not in registry
    status = run_net.main(["--cfg", DEMO_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out),
                           "DATA.CUSTOM_MODULES", f"['{plugin}']", *choices, *ONE_STEP])
    assert status == 0
    for registry, name in REGISTERED.values():
        assert name in registry
    (step,) = [stats for stats in read_json_stats(str(out)) if stats["_type"] == "train_iter"]
    assert torch.isfinite(torch.tensor(step["loss"]))
    # The user's mask: 4 items x the first of 4 rows, a quarter of the 4x4x4 prediction grid.
    assert step["masked_tokens"] == 4 * 16
    # The step drew the 4 items' masks, then ran the user's method, which called the user's
    # target (a second import of the file returns the module already imported, registering
    # nothing twice).
    (module,) = import_custom_modules([str(plugin)])
    assert module.CALLS[0] == "dataset" and module.CALLS[-6:] == ["mask"] * 4 + ["method", "target"]
    assert [name for name, _ in DATASET_REGISTRY].count("FourVideos") == 1


def test_a_process_spawned_for_a_multi_gpu_job_imports_the_modules_before_its_job(tmp_path, monkeypatch):
    from slowmask.config import get_cfg
    from slowmask.engine import launch

    plugin = tmp_path / "spawned_parts.py"
    plugin.write_text(HEADER + textwrap.dedent(PARTS["target"][0]).replace("negated_pixels", "spawned_target"))
    cfg = get_cfg()  # as the child receives it: a config, its modules not imported in this process
    cfg.DATA.CUSTOM_MODULES = [str(plugin)]
    seen = []
    monkeypatch.setattr(launch, "run_at", lambda place, job, cfg, init_method: seen.append(
        "spawned_target" in TARGET_REGISTRY))
    launch._spawned(0, None, cfg, "tcp://localhost:9999")
    assert seen == [True]
