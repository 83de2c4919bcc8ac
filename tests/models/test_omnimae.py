"""OmniMAE on the model side: one MAE takes video batches and image batches (one frame
repeated to the 2-frame patch) in turn; images get the positions of the first temporal
slice; the full recipe builds ViT-B with OmniMAE's decoder."""

import os

import torch

from slowmask.config import load_config
from slowmask.masking import RandomMaskGenerator
from slowmask.methods import build_model
from slowmask.checkpoint.geometry import resize_pos_embed
from slowmask.models.layers.position import pos_embed_for_input, sincos_3d
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "configs", "demo", "ViT_tiny_OmniMAE_PT.yaml")
RECIPE = os.path.join(REPO, "configs", "k400_in1k_ViT_B_OmniMAE_PT.yaml")


def test_a_one_slice_input_takes_the_first_temporal_slice_of_the_positions():
    table = sincos_3d(64, (4, 2, 2))[None]  # (1, 16, 64)
    image = pos_embed_for_input(table, (4, 2, 2), (1, 2, 2))
    assert torch.equal(image, table[:, :4])
    larger_image = pos_embed_for_input(table, (4, 2, 2), (1, 4, 4))
    assert torch.equal(larger_image, resize_pos_embed(table[:, :4], (1, 2, 2), (1, 4, 4)))
    assert torch.equal(pos_embed_for_input(table, (4, 2, 2), (2, 2, 2)), resize_pos_embed(table, (4, 2, 2), (2, 2, 2)))


def _masks(grid, ratio, batch):
    generator = RandomMaskGenerator(grid, ratio)
    return torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])


def test_one_model_takes_video_and_image_batches_each_on_its_own_grid():
    cfg = load_config(DEMO)
    torch.manual_seed(0)
    model = build_model(cfg)
    video, image = torch.randn(2, 3, 8, 64, 64), torch.randn(3, 3, 1, 64, 64).repeat_interleave(2, dim=2)
    out_video = model(video, _masks((4, 4, 4), 0.95, 2))
    out_image = model(image, _masks((1, 4, 4), 0.9, 3))
    # Targets: 3 x 2 x 16 x 16 pixels of each masked token (both frames, TIME_STRIDE_LOSS False).
    assert out_video["pred"].shape == out_video["target"].shape == (2 * 61, 1536)
    assert out_image["pred"].shape == out_image["target"].shape == (3 * 14, 1536)
    (out_video["loss"] + out_image["loss"]).backward()
    assert torch.isfinite(model.encoder.patch_embed.proj.weight.grad).all()


def test_the_full_recipe_builds_vit_b_with_omnimae_decoder():
    run_net = load_tool("run_net")
    cfg = run_net.config_from_args(run_net.parse_args(["--cfg", RECIPE]))
    with torch.device("meta"):
        model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 96_028_416
    # The fixed sine-cosine table (8 x 14 x 14 tokens x 768) is not trained.
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == 1568 * 768
    overrides = [dict(zip(o[0::2], o[1::2])) for o in cfg.MULTI_DATASET.OVERRIDES]
    assert [o["TRAIN.DATASET"] for o in overrides] == ["kinetics", "imagenet"]
    image = overrides[1]
    assert (cfg.AUG.MASK_RATIO, image["AUG.MASK_RATIO"], image["MULTI_DATASET.REPEAT_FRAMES"]) == (0.95, 0.9, 2)
