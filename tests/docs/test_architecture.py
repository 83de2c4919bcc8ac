"""docs/ARCHITECTURE.md says what the code is: the files of one training step exist, the
engine table lists every engine module and sub-package, the registry
table every registry, and the layer table every package."""

import os
import re

from slowmask.data import DATASET_REGISTRY
from slowmask.masking import MASK_REGISTRY
from slowmask.methods import METHOD_REGISTRY
from slowmask.models import LOSS_REGISTRY, MODEL_REGISTRY
from slowmask.targets import TARGET_REGISTRY

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(REPO, "slowmask")
with open(os.path.join(REPO, "docs", "ARCHITECTURE.md")) as f:
    TEXT = f.read()


def section(title: str) -> str:
    return TEXT.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def first_cells(title: str):
    return [line.split("|")[1:3] for line in section(title).splitlines() if re.match(r"\| \d+ \||\| `", line)]


def test_the_files_of_one_step_exist_each_once():
    files = [cells[1].strip(" `") for cells in first_cells("One training step, from a CSV row to the loss")]
    assert files
    assert len(set(files)) == len(files)
    for path in files:
        assert os.path.isfile(os.path.join(PACKAGE, path)), path


def test_the_engine_table_lists_every_engine_module():
    listed = {cells[0].strip(" `") for cells in first_cells("engine/")}
    engine = os.path.join(PACKAGE, "engine")
    present = {name for name in os.listdir(engine) if name.endswith(".py")} - {"__init__.py"}
    present |= {f"{name}/" for name in os.listdir(engine) if os.path.isfile(os.path.join(engine, name, "__init__.py"))}
    assert listed == present


def test_the_registry_table_names_every_registry():
    listed = {cells[0].strip(" `") for cells in first_cells("Registries")}
    registries = (DATASET_REGISTRY, MASK_REGISTRY, TARGET_REGISTRY, METHOD_REGISTRY, MODEL_REGISTRY, LOSS_REGISTRY)
    assert listed == {f"{registry._name}_REGISTRY" for registry in registries}


def test_the_layer_table_names_every_package():
    layers = section("Layering")
    packages = {name[:-3] if name.endswith(".py") else name for name in os.listdir(PACKAGE)}
    packages -= {"__init__", "__pycache__"}
    for package in packages:
        assert f"`{package}`" in layers, package
