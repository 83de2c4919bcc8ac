"""tools/export.py: a classifier as TorchScript or torch.export, equal to the eager model."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.checkpoint import save_checkpoint
from slowmask.methods import build_model
from numerics import assert_close_at_scale
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
export = load_tool("export")

DEMO = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
SMALL = ["DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "MVIT.DEPTH", "2"]
CLASSIFIER = [*SMALL, "MODEL.MODEL_NAME", "MViT", "MASK.ENABLE", "False", "MODEL.NUM_CLASSES", "4"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(3)
    model = build_model(load_config(DEMO, CLASSIFIER))
    path = str(tmp_path_factory.mktemp("export") / "classifier.pyth")
    save_checkpoint(path, model, None, 1, "")
    return path, model.eval()


@pytest.mark.parametrize("fmt, name", [("torchscript", "model.pt"), ("export", "model.pt2")])
def test_written_program_gives_the_checkpoints_logits_at_any_batch(weights, tmp_path, fmt, name):
    path, model = weights
    output = str(tmp_path / name)
    assert export.main(["--cfg", DEMO, "--weights", path, "--format", fmt, "--output", output, *CLASSIFIER]) == 0
    program = torch.jit.load(output) if fmt == "torchscript" else torch.export.load(output).module()
    clips = torch.randn(3, 3, 4, 32, 32)
    with torch.no_grad():
        assert_close_at_scale(program(clips), model(clips))


def test_a_pretraining_config_is_refused(tmp_path, capsys):
    assert export.main(["--cfg", DEMO, "--output", str(tmp_path / "m.pt2")]) == 2
    assert "export writes classifiers" in capsys.readouterr().err


def test_export_needs_a_pt2_file_name(tmp_path, capsys):
    assert export.main(["--cfg", DEMO, "--format", "export", "--output", str(tmp_path / "m.pt"), *CLASSIFIER]) == 2
    assert "saved as .pt2 files" in capsys.readouterr().err


def test_weights_of_another_model_show_the_diff(weights, tmp_path, capsys):
    path, _ = weights
    other = CLASSIFIER[:-1] + ["7"]
    assert export.main(["--cfg", DEMO, "--weights", path, "--output", str(tmp_path / "m.pt2"), *other]) == 4
    err = capsys.readouterr().err
    assert "does not fit this model" in err and "head.projection.bias: checkpoint [4] vs model [7]" in err
