"""V-JEPA: the encoder sees each mask set's context only, the predictor returns one row per
predicted token, the loss is the mean over sets of |pred - target|^p / p against the
layer-normed EMA target; the target equals the encoder at step 0 and moves by the momentum
rule after each update; images (T = 1) take the same path."""

import math
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from slowmask import checkpoint
from slowmask.config import get_cfg, load_config
from slowmask.engine.train import train
from slowmask.masking import equal_count_indices, random_equal_count_indices
from slowmask.models.ema import MomentumSchedule
from slowmask.utils.logging import setup_logging
from slowmask.methods import build_model
from slowmask.methods.vjepa import VJEPA, jepa_networks
from slowmask.utils.errors import ConfigError

from tool_scripts import REPO

DEMO = os.path.join(REPO, "configs", "demo", "ViT_tiny_VJEPA_PT.yaml")


class StandInBlocks:
    """A mask set for these tests: one random (h_size x w_size) block over all frames,
    bool (t, h, w), True = to predict."""

    def __init__(self, grid, size):
        self.grid, self.size = grid, size

    def __call__(self, generator):
        t, h, w = self.grid
        top = int(torch.randint(0, h - self.size + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - self.size + 1, (1,), generator=generator))
        mask = torch.zeros(self.grid, dtype=torch.bool)
        mask[:, top : top + self.size, left : left + self.size] = True
        return mask


def tiny_cfg(frames=4, rope=True):
    cfg = get_cfg()
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE = frames, 64
    patch_t = 2 if frames > 1 else 1
    cfg.MVIT.PATCH_KERNEL = cfg.MVIT.PATCH_STRIDE = [patch_t, 16, 16]
    cfg.MVIT.PATCH_PADDING = [0, 0, 0]
    cfg.MVIT.EMBED_DIM, cfg.MVIT.NUM_HEADS, cfg.MVIT.DEPTH = 48, 2, 2
    cfg.MVIT.CLS_EMBED_ON, cfg.MVIT.DROPPATH_RATE = False, 0.0
    cfg.MVIT.USE_ROPE, cfg.MVIT.USE_ABS_POS = rope, not rope
    cfg.MVIT.USE_FIXED_SINCOS_POS, cfg.MVIT.SINCOS_LAYOUT = not rope, "vjepa"
    cfg.JEPA.PRED_DEPTH, cfg.JEPA.PRED_EMBED_DIM, cfg.JEPA.PRED_NUM_HEADS = 1, 24, 2
    return cfg


def tiny_model(frames=4, rope=True, momentum=(0.9, 0.9), loss_exp=1.0, sizes=(1, 3)):
    torch.manual_seed(0)
    encoder, predictor = jepa_networks(tiny_cfg(frames, rope))
    grid = encoder.patch_grid
    masks = [StandInBlocks(grid, size) for size in sizes]
    return VJEPA(encoder, predictor, masks, MomentumSchedule(*momentum, total_steps=10), loss_exp)


def clips(batch=2, frames=4, seed=0):
    return torch.randn(batch, 3, frames, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_the_encoder_sees_each_sets_context_and_the_loss_is_the_mean_over_sets():
    model = tiny_model(sizes=(1, 3), loss_exp=1.0)
    x = clips(batch=3)
    torch.manual_seed(5)
    out = model(x)
    (ctx_small, tgt_small), (ctx_large, tgt_large) = out["mask_sets"]
    # A 1x1 block over 2 frames: 2 predicted, 30 context tokens; a 3x3 block: 18 and 14.
    assert (tgt_small.shape, ctx_small.shape, tgt_large.shape, ctx_large.shape) == ((3, 2), (3, 30), (3, 18), (3, 14))
    assert [p.shape for p in out["pred"]] == [(6, 48), (54, 48)]
    # The loss, recomputed from its parts: the target encoder on the whole clip, layer-normed.
    with torch.no_grad():
        full = model.target.encoder.forward_features(x)
        target = F.layer_norm(full, (48,))
        losses = []
        for index, ((context_index, target_index), pred) in enumerate(zip(out["mask_sets"], out["pred"])):
            rows = torch.gather(target, 1, target_index[..., None].expand(-1, -1, 48)).flatten(0, 1)
            assert torch.allclose(out["target"][index], rows, atol=1e-6 * float(rows.abs().max()))
            losses.append((pred - rows).abs().mean())
    assert float(out["loss"].detach()) == pytest.approx(float(sum(losses) / 2), rel=1e-5)
    out["loss"].backward()
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.target.parameters())
    assert model.pred_head.mask_tokens[1].grad.abs().sum() > 0


def test_the_loss_exponent_divides_by_p():
    model = tiny_model(loss_exp=2.0, sizes=(2,))
    torch.manual_seed(1)
    out = model(clips())
    expected = ((out["pred"][0].float() - out["target"][0]) ** 2).mean() / 2.0
    assert float(out["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_context_tokens_carry_their_own_places():
    """Rotary and table positions: a set's context tokens are encoded where they sit."""
    for rope in (True, False):
        model = tiny_model(rope=rope).eval()
        x = clips(batch=1)
        keep = torch.tensor([[0, 5, 17, 30]])
        # The first token's output depends on the place another kept token holds.
        model.encoder.blocks = model.encoder.blocks[:1]
        sub, _ = model.encoder(x, keep)
        moved, _ = model.encoder(x, torch.tensor([[0, 6, 17, 30]]))
        assert sub.shape == (1, 4, 48)
        assert not torch.allclose(sub[0, 0], moved[0, 0], atol=1e-4)


def test_the_target_equals_the_encoder_at_step_0_and_moves_by_the_momentum_rule():
    model = tiny_model(momentum=(0.9, 0.5))
    encoder, target = dict(model.encoder.named_parameters()), dict(model.target.encoder.named_parameters())
    assert encoder.keys() == target.keys()
    assert all(torch.equal(encoder[name], target[name]) for name in encoder)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = {name: value.detach().clone() for name, value in target.items()}
    torch.manual_seed(2)
    model(clips())["loss"].backward()
    optimizer.step()
    model.after_update(4)  # momentum 0.9 + (0.5 - 0.9) * 4 / 10 = 0.74
    moved = 0
    for name, value in target.items():
        expected = 0.74 * before[name].double() + 0.26 * encoder[name].detach().double()
        scale = float(expected.abs().max()) + 1e-12
        assert torch.allclose(value.double(), expected, atol=1e-6 * scale, rtol=0), name
        moved += not torch.equal(value, before[name])
    assert moved > 0
    assert not any(p.requires_grad for p in model.target.parameters())


def test_the_target_encoder_is_in_the_state_dict_and_loads_back():
    model = tiny_model()
    with torch.no_grad():
        for param in model.target.parameters():
            param.add_(1.0)
    state = model.state_dict()
    assert "target.encoder.blocks.0.attn.qkv.weight" in state and "blocks.0.attn.qkv.weight" in state
    assert "pred_head.mask_tokens.1" in state and "pred_head.predictor_proj.weight" in state
    other = tiny_model()
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.target.parameters(), model.target.parameters()))


def test_images_take_the_same_path():
    model = tiny_model(frames=1, sizes=(2,))
    torch.manual_seed(3)
    out = model(clips(frames=1))
    assert model.encoder.patch_grid == (1, 4, 4)
    assert out["pred"][0].shape == (2 * 4, 48)
    out["loss"].backward()
    assert math.isfinite(float(out["loss"].detach()))


def test_eval_mode_draws_the_same_masks_each_time_and_leaves_the_global_generator_alone():
    model = tiny_model().eval()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    first = model.draw_masks(2, torch.device("cpu"))
    second = model.draw_masks(2, torch.device("cpu"))
    assert all(torch.equal(a, b) for pair_a, pair_b in zip(first, second) for a, b in zip(pair_a, pair_b))
    assert torch.equal(torch.get_rng_state(), state)


def _demo_cfg(data_dir, out_dir):
    return load_config(DEMO, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "2", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5",
        "TRAIN.CHECKPOINT_PERIOD_ITERS", "3", "JEPA.EMA", "[0.5, 0.9]", "JEPA.EMA_STEPS", "6",
    ])


def test_a_run_resumed_mid_epoch_ends_bit_identical_with_its_target_encoder(demo_data_dir, tmp_path):
    try:
        train(_demo_cfg(demo_data_dir, tmp_path / "whole"))
        os.makedirs(tmp_path / "resumed" / "checkpoints")
        shutil.copy(checkpoint.checkpoint_path(str(tmp_path / "whole"), 1, 3), tmp_path / "resumed" / "checkpoints")
        train(_demo_cfg(demo_data_dir, tmp_path / "resumed"))
    finally:
        setup_logging(None)  # later tests log to their console, not to this run's stdout.log
    final = [checkpoint.read_checkpoint(checkpoint.checkpoint_path(str(tmp_path / run), 1))["model_state"]
             for run in ("whole", "resumed")]
    targets = [name for name in final[0] if name.startswith("target.encoder.")]
    assert len(targets) == len([name for name in final[0] if name.startswith("blocks.")]) + 4  # + patch_embed, norm
    assert final[0].keys() == final[1].keys()
    for name, value in final[0].items():
        assert torch.equal(final[1][name], value), name
    # The target moved away from its start and differs from the encoder (momentum 0.5 -> 0.9).
    start = checkpoint.read_checkpoint(checkpoint.checkpoint_path(str(tmp_path / "whole"), 1, 3))["model_state"]
    name = "blocks.0.attn.qkv.weight"
    assert not torch.equal(final[0]["target.encoder." + name], start["target.encoder." + name])
    assert not torch.equal(final[0]["target.encoder." + name], final[0][name])


@pytest.mark.parametrize("recipe, encoder, predictor", [
    ("k400_ViT_L_VJEPA2_PT.yaml", 303_885_312, 22_082_944),
    ("k400_ViT_H_VJEPA2_PT.yaml", 631_648_000, 22_279_808),
    ("k400_ViT_g_VJEPA2_PT.yaml", 1_012_173_952, 23_660_932),
])
def test_the_recipes_build_vjepa2s_networks(recipe, encoder, predictor):
    """V-JEPA 2's ViT-L / H / g (about 300 M, 600 M and 1 B parameters) and its 12-block
    384-wide predictor, built on the meta device; the target encoder mirrors the encoder."""
    cfg = load_config(os.path.join(REPO, "configs", recipe))
    with torch.device("meta"):
        model = VJEPA.from_config(cfg)
    count = lambda module: sum(p.numel() for p in module.parameters())
    assert (count(model.encoder), count(model.pred_head), count(model.target)) == (encoder, predictor, encoder)
    assert model.encoder.patch_grid == (8, 16, 16) and model.ema(0) == model.ema(10**6) == 0.99925
    assert not any(p.requires_grad for p in model.target.parameters())


def test_a_vjepa_checkpoint_initializes_a_classifier_of_its_encoder(tmp_path):
    """Fine-tuning reads the encoder (flat names); the predictor and target encoder are skipped."""
    cfg = load_config(DEMO)
    torch.manual_seed(0)
    pretrained = VJEPA.from_config(cfg)
    path = str(tmp_path / "vjepa.pyth")
    torch.save({"model_state": pretrained.state_dict(), "epoch": 0}, path)
    classifier_cfg = load_config(DEMO, ["MODEL.MODEL_NAME", "MViT", "MODEL.NUM_CLASSES", "4", "MASK.ENABLE", "False"])
    classifier = build_model(classifier_cfg)
    report = checkpoint.load_pretrained(path, classifier)
    name = "blocks.2.attn.qkv.weight"
    assert torch.equal(classifier.state_dict()[name], pretrained.encoder.state_dict()[name])
    assert torch.equal(classifier.norm.weight, pretrained.encoder.norm.weight)
    assert sorted(report.new) == ["head.projection.bias", "head.projection.weight"]


def test_even_counts_random_keeps_a_draw_of_each_items_positions_from_the_masks_generator():
    model = build_model(load_config(DEMO, ["JEPA.EVEN_COUNTS", "random"])).train()
    torch.manual_seed(11)
    drawn = model.draw_masks(8, torch.device("cpu"))
    torch.manual_seed(11)
    for mask_set, (context, predicted) in zip(model.mask_sets, drawn):
        masks = torch.stack([mask_set(torch.default_generator) for _ in range(8)])
        expected = random_equal_count_indices(masks, torch.default_generator)
        assert torch.equal(context, expected[0]) and torch.equal(predicted, expected[1])
        assert not torch.equal(context, equal_count_indices(masks)[0])  # not the first positions


def test_an_unknown_even_counts_is_named_with_the_choices():
    encoder, predictor = jepa_networks(tiny_cfg())
    with pytest.raises(ConfigError, match=r"^unknown JEPA.EVEN_COUNTS 'last': choose one of first, random$"):
        VJEPA(encoder, predictor, [StandInBlocks(encoder.patch_grid, 1)], MomentumSchedule(0.9, 0.9, 1), 1.0, "last")
