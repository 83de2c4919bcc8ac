"""Loading a tools/ script as a module, the one way tests do it, the demo config the
tools' tests run on, and the keys of a short fine-tune of the demo's classifier."""

import importlib.util
import os
import sys
from types import ModuleType
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
# A short fine-tune of FT_CFG from scratch: two batches an epoch at most, 32x32 clips, a 2-block
# model, evaluated every epoch.
QUICK_FINETUNE = ["DATA_LOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_EPOCHS", "0.5", "LOG_PERIOD", "1", "MVIT.DEPTH", "2",
                  "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.DECODING_SHORT_SIZE", "40",
                  "TRAIN.CHECKPOINT_FILE_PATH", "", "TRAIN.EVAL_PERIOD", "1"]


def demo_overrides(data_dir: str, out_dir: str) -> List[str]:
    return ["DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", out_dir, "DATA_LOADER.NUM_WORKERS", "0"]


def load_tool(name: str) -> ModuleType:
    """tools/<name>.py as a module (tools/ is not a package), loaded once per session so
    that every test patches and reads the same module object."""
    module_name = f"slowmask_tool_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
