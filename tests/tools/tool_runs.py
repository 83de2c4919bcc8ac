"""Helpers of the tools' tests: the demo config and loading a tools/ script as a module."""

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def demo_overrides(data_dir: str, out_dir: str):
    return ["DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", out_dir, "DATA_LOADER.NUM_WORKERS", "0"]


def load_tool(name: str):
    """tools/<name>.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"slowmask_tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
