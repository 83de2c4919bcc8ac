"""The frozen teacher built from its config and checkpoint: the demo MVD recipe distils
from a briefly trained MaskFeat demo and its loss falls, and so does the dense demo recipe
that distils make demo's own MViT; the full recipe builds."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.checkpoint import save_checkpoint
from slowmask.methods import build_teacher
from slowmask.methods import build_model
from tool_scripts import load_tool
from recipe_batches import smooth_batch

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
TEACHER_CFG = os.path.join(CONFIGS, "demo", "ViT_tiny_MaskFeat_PT.yaml")


@pytest.fixture(scope="module")
def maskfeat_checkpoint(tmp_path_factory):
    """The MaskFeat demo trained for 3 steps on random clips, saved as a checkpoint."""
    cfg = load_config(TEACHER_CFG)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    clips, masks = smooth_batch(cfg)
    for _ in range(3):
        optimizer.zero_grad()
        model(clips, masks)["loss"].backward()
        optimizer.step()
    path = str(tmp_path_factory.mktemp("teacher") / "checkpoint_epoch_00003.pyth")
    save_checkpoint(path, model, optimizer, 3, cfg.dump())
    return path, model


def _demo_cfg(checkpoint, *opts):
    path = os.path.join(CONFIGS, "demo", "ViT_tiny_MVD_PT.yaml")
    return load_config(path, ["TEACHER.CFG_FILE", TEACHER_CFG, "TEACHER.CHECKPOINT_FILE_PATH", checkpoint, *opts])


def test_teacher_has_the_checkpoint_weights_and_is_frozen(maskfeat_checkpoint):
    path, maskfeat = maskfeat_checkpoint
    teacher = build_teacher(_demo_cfg(path, "TEACHER.LAYER", "1"))
    assert len(teacher.trunk.blocks) == 2 and teacher.dim == 64 and not teacher.training
    torch.testing.assert_close(teacher.trunk.blocks[1].mlp.fc1.weight, maskfeat.encoder.blocks[1].mlp.fc1.weight)
    assert all(not p.requires_grad for p in teacher.parameters())
    tokens, grid = teacher(torch.randn(1, 3, 8, 64, 64))
    assert tokens.shape == (1, 64, 64) and tuple(grid) == (4, 4, 4)


def test_image_teacher_encodes_each_frame(tmp_path):
    image_cfg = os.path.join(CONFIGS, "demo", "ViT_tiny_image_MaskFeat_PT.yaml")
    cfg = load_config(image_cfg)
    path = str(tmp_path / "image.pyth")
    save_checkpoint(path, build_model(cfg), None, 1, cfg.dump())
    student = _demo_cfg(path, "TEACHER.CFG_FILE", image_cfg)
    teacher = build_teacher(student)
    clip = torch.randn(1, 3, 8, 32, 32)  # the recipe's crops
    tokens, grid = teacher(clip)
    assert tuple(grid) == (8, 8, 8) and tokens.shape == (1, 512, 64)
    alone, _ = teacher(clip[:, :, 3:4])
    torch.testing.assert_close(tokens[:, 3 * 64 : 4 * 64], alone, atol=1e-5, rtol=1e-4)


def test_missing_checkpoint_is_one_clear_error():
    cfg = load_config(os.path.join(CONFIGS, "k400_ViT_B_MVD_PT.yaml"))
    with pytest.raises(ValueError, match="TEACHER.CHECKPOINT_FILE_PATH"), torch.device("meta"):
        build_model(cfg)


def test_demo_recipe_distils_with_falling_loss(maskfeat_checkpoint):
    cfg = _demo_cfg(maskfeat_checkpoint[0])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    assert not model.target.teacher.training
    assert not [k for k in model.state_dict() if k.startswith(("target.", "trunk."))]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    clips, masks = smooth_batch(cfg)
    losses = []
    for _ in range(24):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(clips, masks)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert out["target"].shape == (int(masks.sum()), 64)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


@pytest.mark.filterwarnings("ignore:.*meta parameter")  # the teacher's weights are loaded into meta tensors
def test_full_recipe_builds_the_student_only(tmp_path):
    # A small stand-in for the ViT-B VideoMAE teacher: 1 block of 768 (the width sets the head).
    tiny = ["MVIT.DEPTH", "1", "MASK.PRETRAIN_DEPTH", "[0]"]
    teacher_cfg = load_config(os.path.join(CONFIGS, "k400_ViT_B_VideoMAE_PT.yaml"), tiny)
    path = str(tmp_path / "teacher.pyth")
    save_checkpoint(path, build_model(teacher_cfg), None, 1, teacher_cfg.dump())
    run_net = load_tool("run_net")
    cfg = run_net.config_from_args(run_net.parse_args([
        "--cfg", os.path.join(CONFIGS, "k400_ViT_B_MVD_PT.yaml"),
        "TEACHER.CHECKPOINT_FILE_PATH", path, "TEACHER.OPTS", str(tiny),
    ]))
    with torch.device("meta"):
        model = build_model(cfg)
    assert len(model.target.teacher.trunk.blocks) == 1
    # The VideoMAE recipe with MVD's decoder (2 blocks of 768) has 104,594,688 parameters;
    # predicting 768 teacher features instead of 1536 pixels removes 768 * 769 of them.
    assert sum(p.numel() for p in model.parameters()) == 104_594_688 - 768 * 769


def test_dense_demo_recipe_distils_make_demos_encoder_with_falling_loss(tmp_path):
    teacher_cfg = load_config(os.path.join(CONFIGS, "demo", "MViT_tiny_MaskFeat_unlabelled_PT.yaml"))
    torch.manual_seed(0)
    path = str(tmp_path / "checkpoint_epoch_00012.pyth")
    save_checkpoint(path, build_model(teacher_cfg), None, 12, teacher_cfg.dump())
    cfg = load_config(os.path.join(CONFIGS, "demo", "MViT_tiny_distill_unlabelled_PT.yaml"),
                      ["TEACHER.CHECKPOINT_FILE_PATH", path])
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    clips, masks = smooth_batch(cfg)
    losses = []
    for _ in range(16):
        out = model(clips, masks)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    # The MViT's 4x4x4 prediction grid, 64-wide teacher tokens on the masked ones.
    assert out["target"].shape == (int(masks.sum()), 64)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
