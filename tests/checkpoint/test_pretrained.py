"""Initializing a classifier from a pretraining checkpoint: what loads, what is dropped,
what is new, and clear errors for files that are not such checkpoints."""

import pytest
import torch
from torch import nn

from slowmask.config import get_cfg
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.checkpoint import load_pretrained
from slowmask.methods import build_model

TINY = [
    "DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "32", "MVIT.EMBED_DIM", "16", "MVIT.DEPTH", "2",
    "MVIT.DIM_MUL", "[[1, 2.0]]", "MVIT.HEAD_MUL", "[[1, 2.0]]", "MVIT.POOL_Q_STRIDE", "[[1, 1, 2, 2]]",
    "MVIT.POOL_KVQ_KERNEL", "[3, 3, 3]", "MVIT.POOL_KV_STRIDE_ADAPTIVE", "[1, 2, 2]", "MVIT.USE_ABS_POS", "False",
    "MVIT.REL_POS_SPATIAL", "True", "MVIT.REL_POS_TEMPORAL", "True", "MVIT.RESIDUAL_POOLING", "True",
    "MODEL.NUM_CLASSES", "4",
]
PRETRAIN = ["MODEL.MODEL_NAME", "MaskMViT", "MASK.ENABLE", "True", "MASK.PRETRAIN_DEPTH", "[1]",
            "MASK.PRED_HOG", "True", "AUG.MASK_WINDOW_SIZE", "[2, 2, 2]"]


def build(*opts):
    cfg = get_cfg()
    cfg.merge_from_list(TINY + list(opts))
    torch.manual_seed(len(opts))
    return build_model(cfg)


@pytest.fixture
def pretrain_checkpoint(tmp_path):
    model = build(*PRETRAIN)
    path = str(tmp_path / "pretrain.pyth")
    checkpoint.save_checkpoint(path, model, None, 19, "cfg")
    return path, model.state_dict()


def test_pretraining_heads_are_dropped_and_the_head_is_new(pretrain_checkpoint):
    path, pretrained = pretrain_checkpoint
    classifier = build()
    head_before = classifier.head.projection.weight.clone()
    report = load_pretrained(path, classifier)
    assert report.skipped == {
        "mask_token": "pretraining only",
        "pred_head.transforms.0.0.weight": "pretraining only",
        "pred_head.transforms.0.0.bias": "pretraining only",
        "pred_head.projections.0.weight": "pretraining only",
        "pred_head.projections.0.bias": "pretraining only",
    }
    assert report.new == ["norm.weight", "norm.bias", "head.projection.weight", "head.projection.bias"]
    assert not report.fitted
    state = classifier.state_dict()
    assert sorted(report.loaded) == sorted(k for k in pretrained if k in state)
    assert all(torch.equal(state[k], pretrained[k]) for k in report.loaded)
    assert torch.equal(classifier.head.projection.weight, head_before)


def test_mae_style_decoder_and_extra_blocks_are_reported(tmp_path, pretrain_checkpoint, caplog):
    _, pretrained = pretrain_checkpoint
    state = dict(pretrained)
    state["decoder_embed.weight"] = torch.zeros(8, 32)
    state["decoder_blocks.0.mlp.fc1.weight"] = torch.zeros(8, 8)
    state["blocks.7.norm1.weight"] = torch.zeros(32)
    state["blocks.7.norm1.bias"] = torch.zeros(32)
    path = str(tmp_path / "mae.pyth")
    torch.save({"model_state": state, "epoch": 0, "cfg": ""}, path)
    report = load_pretrained(path, build())
    assert report.skipped["decoder_embed.weight"] == "pretraining only"
    assert report.skipped["decoder_blocks.0.mlp.fc1.weight"] == "pretraining only"
    assert report.skipped["blocks.7.norm1.weight"] == "not in this model"
    # A deeper encoder's block left out is a warning naming it once; the decoder's are expected.
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [f"{path} and this model differ in depth: blocks left out of the checkpoint: blocks.7; blocks "
                        f"created by the model (not pretrained): none. Give the model the checkpoint's depth (MVIT.DEPTH)"]


def test_a_shallower_checkpoint_leaves_the_models_last_block_new_and_says_so(pretrain_checkpoint, caplog):
    path, _ = pretrain_checkpoint
    report = load_pretrained(path, build("MVIT.DEPTH", "3"))
    assert [name for name in report.new if name.startswith("blocks.")][:2] == ["blocks.2.norm1.weight",
                                                                                "blocks.2.norm1.bias"]
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [f"{path} and this model differ in depth: blocks left out of the checkpoint: none; blocks "
                        f"created by the model (not pretrained): blocks.2. Give the model the checkpoint's depth "
                        f"(MVIT.DEPTH)"]


def test_missing_corrupt_and_foreign_checkpoints(tmp_path):
    classifier = build()
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint not found: .*none.pyth"):
        load_pretrained(str(tmp_path / "none.pyth"), classifier)
    corrupt = tmp_path / "corrupt.pyth"
    corrupt.write_bytes(b"\x00 not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="is not a readable PyTorch checkpoint"):
        load_pretrained(str(corrupt), classifier)
    resnet = str(tmp_path / "resnet.pyth")
    checkpoint.save_checkpoint(resnet, nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), None, 0, "")
    with pytest.raises(checkpoint.CheckpointError, match="resnet.pyth: no tensor of the checkpoint fits .*another architecture"):
        load_pretrained(resnet, classifier)
    wider = str(tmp_path / "wider.pyth")
    checkpoint.save_checkpoint(wider, build("MVIT.EMBED_DIM", "24"), None, 0, "")
    with pytest.raises(checkpoint.CheckpointError, match=r"another architecture .*cls_token: \(1, 1, 24\) does not fit the model's \(1, 1, 16\)"):
        load_pretrained(wider, classifier)


def test_classifier_checkpoint_round_trips(tmp_path):
    classifier = build()
    path = str(tmp_path / "classifier.pyth")
    checkpoint.save_checkpoint(path, classifier, None, 3, "cfg")
    fresh = build("RNG_SEED", "5")
    assert resume.resume(path, fresh) == 3
    x = torch.randn(2, 3, 8, 32, 32)
    assert torch.equal(classifier.eval()(x), fresh.eval()(x))
    report = load_pretrained(path, build("RNG_SEED", "6"))
    assert not report.new and not report.skipped
