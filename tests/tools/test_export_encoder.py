"""tools/export.py --encoder: the encoder alone of a pretraining model (sparse MAE, dense
MaskFeat) or of a fine-tuned classifier, as a program giving the tokens the probes read;
and the metadata json beside every export."""

import json
import logging
import os

import pytest
import torch

from slowmask.checkpoint import save_checkpoint
from slowmask.config import load_config
from slowmask.features import encoder_tokens
from slowmask.methods import build_model
from numerics import assert_close_at_scale
from tool_scripts import REPO, load_tool

export = load_tool("export")


def demo(name: str) -> str:
    return os.path.join(REPO, "configs", "demo", name)


SMALL_VIT = ["DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32"]
CASES = {
    # config, overrides, tensors the encoder never reads
    "mae": ("ViT_tiny_MAE_PT.yaml", [*SMALL_VIT, "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]"],
            {"encoder.decoder_embed.weight", "encoder.decoder_embed.bias", "encoder.decoder_pos_embed",
             "encoder.mask_token"}),
    "maskfeat": ("ViT_tiny_MaskFeat_PT.yaml", [*SMALL_VIT, "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]"],
                 {"encoder.mask_token"}),
    "fine-tuned": ("ViT_tiny_VideoMAE_FT.yaml", SMALL_VIT,
                   {"head.projection.weight", "head.projection.bias", "norm.weight", "norm.bias"}),
}


def saved_model(tmp_path, name: str, overrides, epoch: int = 2):
    torch.manual_seed(5)
    model = build_model(load_config(demo(name), overrides))
    with torch.no_grad():  # no tensor left at its initial value, so a dropped one shows
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value) * 0.1)
    path = str(tmp_path / "weights.pyth")
    save_checkpoint(path, model, None, epoch, "")
    return path, model.eval()


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_encoder_program_gives_the_eager_encoders_tokens_at_any_batch(case, tmp_path):
    name, overrides, left_out = CASES[case]
    weights, model = saved_model(tmp_path, name, overrides)
    output = str(tmp_path / "encoder.pt2")
    assert export.main(["--cfg", demo(name), "--weights", weights, "--encoder", "--output", output, *overrides]) == 0
    program = torch.export.load(output)
    clips = torch.randn(3, 3, 4, 32, 32)
    expected = encoder_tokens(model, clips)
    with torch.no_grad():
        assert_close_at_scale(program.module()(clips), expected)
    kept = {name.removeprefix("model.") for name in program.state_dict}
    names = {name for name, _ in [*model.named_parameters(), *model.named_buffers()]}
    assert left_out <= names and not kept & left_out
    assert [name for name in kept if name.endswith("patch_embed.proj.weight")]
    written = json.loads(open(output + ".json").read())
    assert written["content"] == "encoder" and written["epoch"] == 3
    assert written["output"]["shape"] == ["B", *expected.shape[1:]]
    assert written["output"]["class_token"] is False and left_out <= set(written["output"]["left_out"])


def test_a_torchscript_encoder_of_a_classifier_drops_the_class_token(tmp_path):
    name, overrides, _ = CASES["fine-tuned"]
    overrides = [*overrides, "MVIT.CLS_EMBED_ON", "True"]
    weights, model = saved_model(tmp_path, name, overrides)
    output = str(tmp_path / "encoder.pt")
    argv = ["--cfg", demo(name), "--weights", weights, "--encoder", "--format", "torchscript", "--output", output]
    assert export.main([*argv, *overrides]) == 0
    clips = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        tokens = torch.jit.load(output)(clips)
        assert_close_at_scale(tokens, model.forward_features(clips)[:, 1:])
    assert tokens.shape == (1, 2 * 2 * 2, 64)


def test_an_encoder_is_written_only_as_a_program(tmp_path, capsys):
    assert export.main(["--cfg", demo("ViT_tiny_FT.yaml"), "--encoder", "--format", "pyth-safe",
                        "--output", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--encoder writes a program: pass --format export or torchscript, not pyth-safe" in err
    assert os.listdir(tmp_path) == []


def classids(folder, names):
    folder.mkdir()
    (folder / "classids.json").write_text(json.dumps({name: index for index, name in enumerate(names)}))
    return str(folder)


def test_a_classifiers_metadata_names_its_input_output_and_classes(tmp_path):
    overrides = [*SMALL_VIT, "MODEL.NUM_CLASSES", "3", "DATA.MEAN", "[0.5, 0.4, 0.3]", "DATA.STD", "[0.2, 0.1, 0.3]",
                 "DATA.SAMPLING_RATE", "6", "DATA.PATH_TO_DATA_DIR", classids(tmp_path / "data", ["cat", "dog", "eel"])]
    weights, _ = saved_model(tmp_path, "ViT_tiny_FT.yaml", overrides, epoch=0)
    output = tmp_path / "classifier.pt2"
    assert export.main(["--cfg", demo("ViT_tiny_FT.yaml"), "--weights", weights, "--output", str(output),
                        *overrides]) == 0
    written = json.loads((tmp_path / "classifier.pt2.json").read_text())
    assert written["input"] == {
        "shape": ["B", 3, 4, 32, 32], "layout": "B, C, T, H, W", "dtype": "float32", "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.1, 0.3], "normalization": "(pixel / 255 - mean) / std per RGB channel", "channel_order": "RGB",
        "frames": 4, "sampling_rate": 6, "target_fps": 30, "short_side": 32, "crop_size": 32,
        "view": "short side resized to short_side, centre crop_size square; frames sampling_rate apart at target_fps",
    }
    assert written["output"] == {
        "shape": ["B", 3], "layout": "B, classes",
        "meaning": "logits (before softmax) of the MODEL.NUM_CLASSES classes", "class_names": ["cat", "dog", "eel"],
    }
    assert (written["file"], written["format"], written["content"], written["model"]) == (
        "classifier.pt2", "export", "classifier", "MViT")
    assert (written["config"], written["weights"], written["epoch"]) == (demo("ViT_tiny_FT.yaml"), weights, 1)
    assert written["largest_difference_to_eager"] < 1e-5 * 10


def test_class_names_that_do_not_fit_the_classes_are_left_out_with_a_warning(tmp_path, caplog):
    data = classids(tmp_path / "data", ["cat", "dog"])
    overrides = [*SMALL_VIT, "MODEL.NUM_CLASSES", "3", "DATA.PATH_TO_DATA_DIR", data]
    with caplog.at_level(logging.WARNING):
        assert export.main(["--cfg", demo("ViT_tiny_FT.yaml"), "--output", str(tmp_path / "m.pt2"), *overrides]) == 0
    assert json.loads((tmp_path / "m.pt2.json").read_text())["output"]["class_names"] is None
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{data}/classids.json names 2 classes (indices [0, 1]), not the model's 3 (MODEL.NUM_CLASSES): the export "
        "metadata holds no class names"]


def test_a_failed_metadata_write_leaves_no_export(tmp_path, monkeypatch):
    def refused(path, fields):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "write_metadata", refused)
    with pytest.raises(OSError):
        export.main(["--cfg", demo("ViT_tiny_FT.yaml"), "--output", str(tmp_path / "m.pt2"), *SMALL_VIT])
    assert os.listdir(tmp_path) == []
