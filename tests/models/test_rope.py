"""3-D rotary positions (MVIT.USE_ROPE) and V-JEPA's sine-cosine table (MVIT.SINCOS_LAYOUT):
the rotation's properties, V-JEPA 2's channel layout against transformers' code, sparse
tokens carrying their positions, and the ViT-only refusal."""

import math

import pytest
import torch

from slowmask.config import get_cfg
from slowmask.models import MODEL_REGISTRY
from slowmask.models.layers.attention import MultiScaleAttention
from slowmask.models.layers.position import sincos_3d_vjepa, sincos_table
from slowmask.models.layers.rope import apply_rope, axis_width, grid_coordinates

GRID = (4, 5, 6)


def _coordinates(index):
    return grid_coordinates(torch.as_tensor(index)[None], GRID)  # (1, N, 3)


@pytest.mark.parametrize("head_dim", [24, 64])
def test_an_exact_rotation_makes_q_dot_k_depend_on_the_position_difference_only(head_dim):
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, head_dim, dtype=torch.float64), torch.randn(1, 1, 1, head_dim, dtype=torch.float64)
    # Token pairs with one offset (1, 2, -3) between them, at different absolute places.
    places = [((0, 0, 3), (1, 2, 0)), ((2, 1, 5), (3, 3, 2)), ((1, 2, 4), (2, 4, 1))]
    dots = []
    for a, b in places:
        qa = apply_rope(q, torch.tensor([[a]], dtype=torch.float64), exact=True)
        kb = apply_rope(k, torch.tensor([[b]], dtype=torch.float64), exact=True)
        dots.append(float((qa * kb).sum()))
    scale = float(q.norm() * k.norm())
    assert dots[1] == pytest.approx(dots[0], abs=1e-12 * scale)
    assert dots[2] == pytest.approx(dots[0], abs=1e-12 * scale)
    # A rotation keeps the norm; the same place for both gives the plain dot product.
    turned = apply_rope(q, torch.tensor([[(3.0, 4.0, 5.0)]], dtype=torch.float64), exact=True)
    assert float(turned.norm()) == pytest.approx(float(q.norm()), rel=1e-12)
    same = apply_rope(k, torch.tensor([[(3.0, 4.0, 5.0)]], dtype=torch.float64), exact=True)
    assert float((turned * same).sum()) == pytest.approx(float((q * k).sum()), abs=1e-12 * scale)


def test_the_reference_layout_is_not_shift_invariant_which_is_why_exact_is_an_option():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 64, dtype=torch.float64), torch.randn(1, 1, 1, 64, dtype=torch.float64)
    dot = lambda a, b: float((apply_rope(q, torch.tensor([[a]], dtype=torch.float64))
                              * apply_rope(k, torch.tensor([[b]], dtype=torch.float64))).sum())
    assert abs(dot((0, 0, 3), (1, 2, 0)) - dot((2, 1, 5), (3, 3, 2))) > 1e-3 * float(q.norm() * k.norm())


@pytest.mark.parametrize("head_dim", [64, 32, 20])
def test_the_reference_layout_equals_transformers_vjepa2_rotary_embeddings(head_dim):
    from transformers import VJEPA2Config
    from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2RopeAttention

    grid = (4, 5, 5)  # transformers' grids are square
    config = VJEPA2Config(hidden_size=head_dim * 2, num_attention_heads=2, crop_size=grid[1] * 16,
                          frames_per_clip=grid[0] * 2, patch_size=16, tubelet_size=2)
    reference = VJEPA2RopeAttention(config, head_dim * 2, 2)
    torch.manual_seed(1)
    index = torch.stack([torch.randperm(math.prod(grid))[:30] for _ in range(3)])  # (B, N) scattered tokens
    x = torch.randn(3, 2, 30, head_dim)
    expected = reference.apply_rotary_embeddings(x, reference.get_position_ids(x[:, 0], masks=index))
    ours = apply_rope(x, grid_coordinates(index, grid))
    assert axis_width(head_dim) == reference.d_dim
    assert torch.allclose(ours, expected, atol=1e-6 * float(x.abs().max()), rtol=0)
    assert not torch.allclose(apply_rope(x, grid_coordinates(index, grid), exact=True), expected, atol=1e-3)


@torch.no_grad()
def test_rotary_positions_follow_the_tokens_of_a_sparse_sequence():
    torch.manual_seed(0)
    attention = MultiScaleAttention(48, 48, 4, GRID, has_cls_embed=False, use_rope=True).eval()
    tokens = torch.randn(2, math.prod(GRID), 48)
    full, _ = attention(tokens, GRID)
    order = torch.stack([torch.randperm(math.prod(GRID)) for _ in range(2)])  # (B, N), each row shuffled
    shuffled = torch.gather(tokens, 1, order[..., None].expand(-1, -1, 48))
    # Each token turned by its own place: the output is the full one, shuffled alike.
    out, _ = attention(shuffled, GRID, grid_coordinates(order, GRID))
    expected = torch.gather(full, 1, order[..., None].expand(-1, -1, 48))
    assert torch.allclose(out, expected, atol=1e-5 * float(full.abs().max()), rtol=0)
    # Taken as a plain sequence in the shuffled order, the tokens get other positions.
    as_sequence, _ = attention(shuffled, GRID)
    assert not torch.allclose(as_sequence, expected, atol=1e-2 * float(full.abs().max()))


def _vit_cfg(**overrides):
    cfg = get_cfg()
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE = 4, 32
    cfg.MVIT.PATCH_KERNEL, cfg.MVIT.PATCH_STRIDE, cfg.MVIT.PATCH_PADDING = [2, 16, 16], [2, 16, 16], [0, 0, 0]
    cfg.MVIT.EMBED_DIM, cfg.MVIT.NUM_HEADS, cfg.MVIT.DEPTH, cfg.MVIT.USE_ROPE = 48, 2, 2, True
    cfg.MODEL.NUM_CLASSES = 3
    for key, value in overrides.items():
        node, leaf = key.split(".")
        cfg[node][leaf] = value
    return cfg


def test_a_vit_classifier_trains_with_rotary_positions():
    torch.manual_seed(0)
    model = MODEL_REGISTRY.build("MViT", _vit_cfg(**{"MVIT.USE_ABS_POS": False}))
    logits = model(torch.randn(2, 3, 4, 32, 32))
    logits.sum().backward()
    assert logits.shape == (2, 3)
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_rotary_positions_with_pooling_are_refused_in_one_line():
    cfg = _vit_cfg(**{"MVIT.POOL_Q_STRIDE": [[1, 1, 2, 2]]})
    with pytest.raises(ValueError) as error:
        MODEL_REGISTRY.build("MViT", cfg)
    message = str(error.value)
    assert message.startswith("MVIT.USE_ROPE needs a ViT: no attention pooling (blocks [1] pool")
    assert "\n" not in message


def test_vjepa_sincos_tables_lay_out_time_height_width():
    table = sincos_3d_vjepa(16, (3, 2, 4))  # widths 8 (t), 4 (h), 4 (w)
    at = lambda t, h, w: table[(t * 2 + h) * 4 + w]
    assert at(1, 0, 0)[0] == pytest.approx(math.sin(1.0)) and at(1, 0, 0)[4] == pytest.approx(math.cos(1.0))
    assert at(0, 1, 0)[8] == pytest.approx(math.sin(1.0)) and at(0, 1, 0)[10] == pytest.approx(math.cos(1.0))
    assert at(0, 0, 3)[12] == pytest.approx(math.sin(3.0)) and at(2, 1, 3)[13] == pytest.approx(math.sin(0.03))
    uniform = sincos_table("vjepa_uniform", 16, (3, 2, 4))  # 2 * ceil(16 / 6) = 6 each, cut to 16
    assert uniform.shape == (24, 16)
    assert uniform[(1 * 2 + 0) * 4 + 0][0] == pytest.approx(math.sin(1.0))
    assert uniform[(0 * 2 + 1) * 4 + 0][6] == pytest.approx(math.sin(1.0))
    assert uniform[(0 * 2 + 0) * 4 + 2][12] == pytest.approx(math.sin(2.0))
    with pytest.raises(ValueError, match="MVIT.SINCOS_LAYOUT 'mae' is not known"):
        sincos_table("mae", 16, (3, 2, 4))
