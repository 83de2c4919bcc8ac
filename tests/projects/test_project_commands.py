"""Every `tools/run_net.py` command of every project README passes the preflight
(`--check`): the demo commands as written, the full recipes on the demo data in one CPU
process (their paths to Kinetics / ImageNet and checkpoints stand in for the user's)."""

import glob
import os
import re
import shlex
from typing import List, Tuple

import pytest
import torch

from slowmask.config import load_config
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
run_net = load_tool("run_net")
make_demo_images = load_tool("make_demo_images")
# A stand-in for the user's data, by the path a README writes.
VIDEO_DATA = ("/path/to/kinetics", "demo_data")
IMAGE_DATA = ("/path/to/imagenet", "demo_images")


def run_net_commands() -> List[Tuple[str, List[str]]]:
    """(README, arguments) of each run_net.py command in the fenced blocks of projects/*/README.md."""
    found = []
    for readme in sorted(glob.glob(os.path.join(REPO, "projects", "*", "README.md"))):
        name = os.path.relpath(readme, REPO)
        for block in FENCE.findall(open(readme).read()):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:2] == ["python", "tools/run_net.py"]:
                    found.append((name, words[2:]))
    return found


COMMANDS = run_net_commands()


def test_the_readmes_hold_commands():
    assert {os.path.dirname(name) for name, _ in COMMANDS} >= {
        "projects/mae", "projects/maskfeat", "projects/mvd", "projects/omnimae", "projects/simmim",
        "projects/videomae", "projects/videomaev2", "projects/custom_dataset"}


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory) -> str:
    """Class folders under train/ and val/, and test/ linked to val/ (as the READMEs link
    ImageNet's)."""
    out = str(tmp_path_factory.mktemp("demo_images"))
    make_demo_images.main([out, "--images-per-class", "8"])
    os.symlink("val", os.path.join(out, "test"))
    return out


def stand_ins(words: List[str], videos: str, images: str) -> List[str]:
    """The README's placeholders and demo folders replaced by the test's; every
    checkpoint it names is written (a stand-in: the preflight reads no weights)."""
    out = []
    for word in words:
        for placeholder, real in [(p, videos) for p in VIDEO_DATA] + [(p, images) for p in IMAGE_DATA]:
            if word == placeholder or word.startswith(placeholder + "/"):
                word = real + word[len(placeholder):]
        if word.endswith(".pyth"):
            write_stand_in_checkpoint(word)
        out.append(word)
    return out


def write_stand_in_checkpoint(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"model_state": {}, "epoch": 0, "cfg": ""}, path)


def image_folder_of_mixed_recipe(cfg, images: str) -> List[str]:
    """What a user of a mixed recipe writes into the yaml (its README says so): the image
    dataset's folder in MULTI_DATASET.OVERRIDES, and batches the demo data fills."""
    if cfg.TRAIN.DATASET != "mixed":
        return []
    overrides = []
    for pairs in cfg.MULTI_DATASET.OVERRIDES:
        pairs = list(pairs)
        for key, value in (("DATA.PATH_TO_DATA_DIR", images), ("TRAIN.BATCH_SIZE", 2)):
            if key in pairs[::2] and (key != "DATA.PATH_TO_DATA_DIR" or not pairs[pairs.index(key) + 1]):
                pairs[pairs.index(key) + 1] = value
        overrides.append(pairs)
    return ["MULTI_DATASET.OVERRIDES", repr(overrides)]


@pytest.mark.parametrize("readme, words", COMMANDS, ids=[f"{name}:{i}" for i, (name, _) in enumerate(COMMANDS)])
def test_the_command_passes_the_preflight(readme, words, demo_data_dir, demo_images, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("configs", "tools", "projects"):
        os.symlink(os.path.join(REPO, name), name)
    os.makedirs("data")  # the OmniMAE demo's folders
    os.symlink(demo_data_dir, "data/demo")
    os.symlink(demo_images, "data/demo_images")
    args = stand_ins(words, demo_data_dir, demo_images)
    # The repository's own path of the yaml: a custom module it names is then the one
    # other tests of this session imported (a module is known by its file's path).
    at = args.index("--cfg") + 1
    args[at] = os.path.join(REPO, args[at])
    cfg = load_config(args[at])
    teacher = cfg.TEACHER.CHECKPOINT_FILE_PATH
    if cfg.MASK.TARGET == "teacher" and teacher and not os.path.isabs(teacher):
        # The teacher the yaml names is the checkpoint an earlier command of the README writes.
        write_stand_in_checkpoint(teacher)
    if cfg.NUM_GPUS > 0:  # a full recipe, checked in one CPU process on the demo data
        args += ["NUM_GPUS", "0", "NUM_SHARDS", "1", "TRAIN.BATCH_SIZE", "2", "TEST.BATCH_SIZE", "2"]
        args += image_folder_of_mixed_recipe(cfg, demo_images)
    assert run_net.main(args + ([] if "--check" in args else ["--check"])) == 0, capsys.readouterr().err
    assert "preflight passed" in capsys.readouterr().out
