"""Fitting checkpoint tensors to another geometry: position tables and 2-D kernels."""

import torch

from slowmask.checkpoint import match_state
from slowmask.methods import build_model
from slowmask.checkpoint.geometry import adapt, inflate_kernel, infer_grid
from numerics import assert_close_at_scale

ABS_POS = ["MVIT.USE_ABS_POS", "True", "MVIT.SEP_POS_EMBED", "False"]


def test_unchanged_grid_is_the_identity(make_cfg, tiny_mvit):
    model = build_model(make_cfg(tiny_mvit, ABS_POS))
    state = model.state_dict()
    for name in ("pos_embed", "blocks.0.attn.rel_pos_h", "blocks.1.attn.rel_pos_t", "patch_embed.proj.weight"):
        assert torch.equal(adapt(name, state[name], state[name].shape, model.patch_grid, model.num_prefix), state[name])
    to_load, report = match_state(state, model)
    assert not report.fitted and not report.skipped and not report.new
    assert all(torch.equal(to_load[k], v) for k, v in state.items())


def test_new_crop_and_frame_count_interpolate_and_the_forward_works(make_cfg, tiny_mvit):
    small = build_model(make_cfg(tiny_mvit, ABS_POS))
    large = build_model(make_cfg(tiny_mvit, ABS_POS, ["DATA.TRAIN_CROP_SIZE", "48", "DATA.NUM_FRAMES", "16"]))
    to_load, report = match_state(small.state_dict(), large)
    assert report.fitted["pos_embed"] == ((1, 1 + 4 * 8 * 8, 16), (1, 1 + 8 * 12 * 12, 16))
    assert {"blocks.0.attn.rel_pos_h", "blocks.0.attn.rel_pos_t", "blocks.2.attn.rel_pos_w"} <= set(report.fitted)
    assert not report.new and not report.skipped
    large.load_state_dict(to_load)
    assert torch.equal(large.pos_embed[:, :1], small.pos_embed[:, :1])  # the class token's entry is kept
    logits = large.eval()(torch.randn(2, 3, 16, 48, 48))
    assert logits.shape == (2, 400) and torch.isfinite(logits).all()


def test_pyslowfast_pretraining_into_its_fine_tuning_recipe_fits_the_last_stage_tables():
    from slowmask.config import load_config

    with torch.device("meta"):
        pretrain = build_model(load_config("configs/k400_MViT_S_MaskFeat_PT.yaml"))
        classifier = build_model(load_config("configs/k400_MViT_S_FT.yaml"))
    _, report = match_state(pretrain.state_dict(), classifier)
    # Block 15 attends on 8x7x7 tokens instead of 8x14x14: its spatial tables shrink.
    assert report.fitted == {
        "blocks.15.attn.rel_pos_h": ((27, 96), (13, 96)),
        "blocks.15.attn.rel_pos_w": ((27, 96), (13, 96)),
    }
    assert report.new == ["norm.weight", "norm.bias", "head.projection.weight", "head.projection.bias"]


def test_inflated_image_model_gives_the_same_output_on_a_static_clip(make_cfg, tiny_mvit):
    shared = ["MVIT.CLS_EMBED_ON", "False", "MVIT.USE_MEAN_POOLING", "True", "MVIT.REL_POS_TEMPORAL", "False", *ABS_POS]
    image = build_model(make_cfg(tiny_mvit, shared, [
        "DATA.NUM_FRAMES", "1", "MVIT.PATCH_2D", "True", "MVIT.PATCH_KERNEL", "[7, 7]",
        "MVIT.PATCH_STRIDE", "[4, 4]", "MVIT.PATCH_PADDING", "[3, 3]", "MVIT.POOL_KVQ_KERNEL", "[1, 3, 3]",
    ]))
    video = build_model(make_cfg(tiny_mvit, shared, ["DATA.NUM_FRAMES", "4"]))
    to_load, report = match_state(image.state_dict(), video)
    assert report.fitted["patch_embed.proj.weight"] == ((16, 3, 7, 7), (16, 3, 3, 7, 7))
    assert report.fitted["blocks.1.attn.pool_q.weight"] == ((16, 1, 1, 3, 3), (16, 1, 3, 3, 3))
    video.load_state_dict(to_load)
    frame = torch.randn(2, 3, 1, 32, 32)
    expected = image.eval()(frame)
    assert_close_at_scale(video.eval()(frame.expand(-1, -1, 4, -1, -1)), expected)


def test_inflation_puts_the_kernel_in_the_central_frame():
    weight = torch.randn(4, 3, 5, 5)
    inflated = inflate_kernel(weight, 3)
    assert inflated.shape == (4, 3, 3, 5, 5)
    assert torch.equal(inflated[:, :, 1], weight) and not inflated[:, :, [0, 2]].any()


def test_grid_of_a_table_is_square_with_the_model_or_a_single_frame():
    assert infer_grid(4 * 14 * 14, (4, 16, 16)) == (4, 14, 14)
    assert infer_grid(16 * 16, (4, 16, 16)) == (1, 16, 16)  # an image checkpoint, not 4x8x8
    assert infer_grid(14 * 14, (3, 16, 16)) == (1, 14, 14)
