"""Importing the user's own modules (DATA.CUSTOM_MODULES) so that what they register
(a dataset, mask generator, target, model or method, with the registry's
`.register()`) can be chosen by name, without a change inside slowmask. `load_config`
imports them as soon as the config is read, before anything is built, so every tool
sees them; a process spawned for a multi-GPU job imports them again when it starts.

An entry is a module name ("my_pkg.my_data", importable from sys.path) or the path of
a .py file ("/work/my_data.py"). Each is imported once per process. A file is imported
under a name derived from its absolute path, so two files called `data.py` do not
collide. Loader workers started by fork inherit the imports; with the spawn start
method use module names, which the workers can import again.
"""

import hashlib
import importlib
import importlib.util
import logging
import os
import sys
from types import ModuleType
from typing import List, Sequence

from .errors import SlowmaskError

logger = logging.getLogger(__name__)

_FILE_MODULE_PREFIX = "slowmask_custom_"


class CustomModuleError(SlowmaskError, ImportError):
    """A DATA.CUSTOM_MODULES entry that cannot be imported."""


def _module_name_for_file(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    digest = hashlib.sha1(path.encode()).hexdigest()[:8]
    return f"{_FILE_MODULE_PREFIX}{stem}_{digest}"


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CustomModuleError(f"DATA.CUSTOM_MODULES: file not found: {path}")
    name = _module_name_for_file(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CustomModuleError(f"DATA.CUSTOM_MODULES: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def import_custom_module(entry: str) -> ModuleType:
    """Import one entry: a .py file path or a module name (already imported: a no-op)."""
    if entry.endswith(".py"):
        return _import_file(entry)
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as error:
        raise CustomModuleError(
            f"DATA.CUSTOM_MODULES: cannot import {entry!r} ({error}); give an importable module "
            "name (its folder on PYTHONPATH) or the path of a .py file"
        ) from error


def import_custom_modules(entries: Sequence[str]) -> List[ModuleType]:
    """Import every entry of DATA.CUSTOM_MODULES, in order."""
    modules = []
    for entry in entries:
        already = entry in sys.modules or _module_name_for_file(os.path.abspath(entry)) in sys.modules
        modules.append(import_custom_module(entry))
        if not already:
            logger.info("imported custom module %s", entry)
    return modules
