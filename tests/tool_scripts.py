"""Loading a tools/ script as a module, the one way tests do it, and the demo config the
tools' tests run on."""

import importlib.util
import os
import sys
from types import ModuleType
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


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
