import os

import pytest
import torch
from torch import nn

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.checkpoint import load_pretrained
from slowmask.methods import build_model
from slowmask.utils.logging import setup_logging
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
extract_features = load_tool("extract_features")

DEMO = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def model_and_optimizer(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def test_naming_and_last_checkpoint(tmp_path):
    out = str(tmp_path)
    assert checkpoint.last_checkpoint(out) is None
    model, optimizer = model_and_optimizer(0)
    for epoch in (0, 1, 9):
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, epoch + 1), model, optimizer, epoch, "cfg: 1")
    assert checkpoint.last_checkpoint(out).endswith("checkpoints/checkpoint_epoch_00010.pyth")
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "checkpoint_epoch_00001.pyth", "checkpoint_epoch_00002.pyth", "checkpoint_epoch_00010.pyth"
    ]


def test_keys_are_pyslowfast_and_weights_only_loadable(tmp_path):
    model, optimizer = model_and_optimizer(0)
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, model, optimizer, 4, "A: 1\n", scaler=torch.amp.GradScaler("cpu"))
    state = torch.load(path, weights_only=True)
    assert set(state) == {"model_state", "optimizer_state", "epoch", "cfg", "scaler_state", "rng_state"}
    assert state["epoch"] == 4 and state["cfg"] == "A: 1\n"
    checkpoint.save_checkpoint(path, model, optimizer, 4, "A: 1\n", iteration=7)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 4 and state["iteration"] == 7 and "scaler_state" not in state


def test_overwrite_is_atomic_and_leaves_no_temporary(tmp_path):
    model, optimizer = model_and_optimizer(0)
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, model, optimizer, 0, "")
    checkpoint.save_checkpoint(path, model, optimizer, 1, "")
    assert os.listdir(tmp_path) == ["c.pyth"]
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_round_trip_then_next_step_is_equal(tmp_path):
    def train_step(model, optimizer):
        x = torch.arange(6.0).view(2, 3)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model, optimizer = model_and_optimizer(0)
    train_step(model, optimizer)
    path = str(tmp_path / "c.pyth")
    checkpoint.save_checkpoint(path, model, optimizer, 0, "")
    fresh_model, fresh_optimizer = model_and_optimizer(1)
    assert resume.resume(path, fresh_model, fresh_optimizer) == 0
    train_step(model, optimizer)
    train_step(fresh_model, fresh_optimizer)
    for a, b in zip(model.state_dict().values(), fresh_model.state_dict().values()):
        assert torch.equal(a, b)


def test_missing_corrupt_and_foreign_files(tmp_path):
    model, _ = model_and_optimizer(0)
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint not found: .*none.pyth"):
        resume.resume(str(tmp_path / "none.pyth"), model)
    corrupt = tmp_path / "corrupt.pyth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt.pyth is not a readable PyTorch checkpoint"):
        resume.resume(str(corrupt), model)
    foreign = str(tmp_path / "foreign.pyth")
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(checkpoint.CheckpointError, match="has no 'model_state'"):
        resume.resume(foreign, model)
    other = str(tmp_path / "other.pyth")
    checkpoint.save_checkpoint(other, nn.Linear(2, 2), None, 0, "")
    with pytest.raises(checkpoint.CheckpointError, match="does not fit this model"):
        resume.resume(other, model)


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    out = str(tmp_path)
    model, optimizer = model_and_optimizer(0)
    checkpoint.save_checkpoint(checkpoint.checkpoint_path(out, 1), model, optimizer, 0, "")
    newest = checkpoint.checkpoint_path(out, 2)
    checkpoint.save_checkpoint(newest, model, optimizer, 1, "")
    with open(newest, "r+b") as f:
        f.truncate(100)
    fresh_model, fresh_optimizer = model_and_optimizer(1)
    with caplog.at_level("WARNING"):
        assert resume.load_newest(out, fresh_model, fresh_optimizer)["epoch"] == 0
    assert "skipping unreadable checkpoint" in caplog.text and "checkpoint_epoch_00002.pyth" in caplog.text
    for a, b in zip(model.state_dict().values(), fresh_model.state_dict().values()):
        assert torch.equal(a, b)
    assert resume.load_newest(str(tmp_path / "elsewhere"), fresh_model) is None


def test_an_empty_file_is_named_as_such(tmp_path):
    empty = tmp_path / "empty.pyth"
    empty.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match=r"empty.pyth is not a readable PyTorch checkpoint: empty file \(0 bytes"):
        checkpoint.read_checkpoint(str(empty))


class Payload:
    """What a malicious checkpoint pickles: a call of os.system when unpickled."""

    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_a_blocked_pickle_names_what_it_asked_for_and_never_advises_weights_only_false(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / "hostile.pyth")
    torch.save({"model_state": {"w": torch.zeros(1)}, "epoch": Payload()}, path)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        checkpoint.read_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a plain checkpoint: it asks to load the Python object posix.system, "
                              "which a checkpoint of tensors and numbers never needs, so it was refused unread")
    assert "Do not load it with weights_only=False: that would run whatever the file holds" in message
    assert "will likely succeed" not in message and caught.value.__cause__ is None
    assert not (tmp_path / "pwned").exists()


def test_non_finite_weights_are_refused_naming_the_tensors(tmp_path):
    model, _ = model_and_optimizer(0)
    with torch.no_grad():
        model[0].weight[0, :2] = float("nan")
        model[2].bias[1] = float("inf")
    path = str(tmp_path / "diverged.pyth")
    checkpoint.save_checkpoint(path, model, None, 3, "")
    fresh, _ = model_and_optimizer(1)
    before = [p.clone() for p in fresh.parameters()]
    with pytest.raises(checkpoint.CheckpointError) as caught:
        resume.resume(path, fresh)  # what testing, extract_features, visualize and export call
    assert str(caught.value) == (f"{path} holds weights that are not finite (NaN or inf) in 2 tensor(s): "
                                 "0.weight (2 of 12), 2.bias (1 of 2); the run that wrote it diverged: use an earlier "
                                 "checkpoint of it")
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.parameters()))
    with pytest.raises(checkpoint.CheckpointError, match=r"diverged.pyth holds weights that are not finite .*0.weight"):
        load_pretrained(path, fresh)  # fine-tuning from it


def test_feature_extraction_from_a_nan_checkpoint_exits_4(demo_data_dir, tmp_path, capsys):
    setup_logging(None)  # to this test's console, not to an earlier test's run
    small = ["DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "MVIT.DEPTH", "2", "MODEL.MODEL_NAME", "MViT",
             "MASK.ENABLE", "False", "MODEL.NUM_CLASSES", "4"]
    model = build_model(load_config(DEMO, small))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    path = str(tmp_path / "nan.pyth")
    checkpoint.save_checkpoint(path, model, None, 0, "")
    videos = tmp_path / "videos.txt"
    videos.write_text(open(os.path.join(demo_data_dir, "test.csv")).read())
    status = extract_features.main(["--cfg", DEMO, "--checkpoint", path, "--videos", str(videos),
                                    "--out", str(tmp_path / "features"), *small])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert status == 4
    assert line.startswith(f"CheckpointError: {path} holds weights that are not finite (NaN or inf) in ")
    assert not (tmp_path / "features" / "features.npy").exists()
