"""tools/export.py's command line: torch.export by default, TorchScript on request and
without warnings the user cannot act on, "loaded weights" in the log, and wrong paths
refused in one line with nothing written."""

import logging
import os
import warnings

import pytest
from tool_scripts import REPO, load_tool

from slowmask.config import load_config
from slowmask.checkpoint import save_checkpoint
from slowmask.methods import build_model

export = load_tool("export")

FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
SMALL = ["DATA.NUM_FRAMES", "4", "DATA.TEST_CROP_SIZE", "32", "MVIT.DEPTH", "2"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export_cli") / "classifier.pyth")
    save_checkpoint(path, build_model(load_config(FT_CFG, SMALL)), None, 0, "")
    return path


def test_the_default_is_a_torch_export_program():
    # test_export.py writes and reads back both formats.
    assert export.parse_args(["--cfg", FT_CFG, "--output", "m.pt2"]).format == "export"


def test_torchscript_on_request_warns_of_nothing_and_says_loaded_weights(weights, tmp_path, caplog):
    output = tmp_path / "m.pt"
    argv = ["--cfg", FT_CFG, "--weights", weights, "--format", "torchscript", "--output", str(output), *SMALL]
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        assert export.main(argv) == 0
    assert [str(w.message)[:80] for w in caught] == []
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "m.pt.json"]
    assert f"loaded weights from {weights} (epoch 1)" in caplog.text and "resumed from" not in caplog.text
    assert f"wrote {output} (torchscript, clips of 3 x 4 x 32 x 32; any batch size)" in caplog.text


def test_a_failed_export_leaves_no_file(weights, tmp_path, monkeypatch):
    def half_written(model, example, fmt, path):
        open(path, "wb").write(b"half")
        raise RuntimeError("export failed")

    monkeypatch.setattr(export, "write_program", half_written)
    with pytest.raises(RuntimeError, match="export failed"):
        export.main(["--cfg", FT_CFG, "--output", str(tmp_path / "m.pt2"), *SMALL])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("output, message", [
    ("{tmp}", "--output {tmp} is a folder: name the file to write in it"),
    ("{tmp}/missing/m.pt2", "--output {tmp}/missing/m.pt2: the folder {tmp}/missing does not exist"),
    ("{tmp}/m.pt", "torch.export programs are saved as .pt2 files; got --output {tmp}/m.pt: name a .pt2 file, "
     "or pass --format torchscript"),
])
def test_a_wrong_output_is_one_line_with_status_2(output, message, tmp_path, capsys):
    assert export.main(["--cfg", FT_CFG, "--output", output.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(tmp=tmp_path) in err
    assert os.listdir(tmp_path) == []


def test_a_folder_as_weights_is_one_line_with_status_4(tmp_path, capsys):
    assert export.main(["--cfg", FT_CFG, "--weights", str(tmp_path), "--output", str(tmp_path / "m.pt2"),
                        *SMALL]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"CheckpointError: {tmp_path} is a folder, not a checkpoint" in err
    assert os.listdir(tmp_path) == []
