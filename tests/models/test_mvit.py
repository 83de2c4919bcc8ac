"""MViTv2 / ViT classifiers from tiny configurations: shapes, variants, checkpointing."""

import pytest
import torch

from slowmask.methods import build_model
from slowmask.models import mvit_layout
from numerics import assert_same_gradients


def test_tiny_mvit_classifier_forward_backward(make_cfg, tiny_mvit):
    model = build_model(make_cfg(tiny_mvit, ["MODEL.NUM_CLASSES", "7"]))
    logits = model(torch.randn(2, 3, 8, 32, 32))
    assert logits.shape == (2, 7)
    logits.sum().backward()
    assert model.blocks[1].attn.rel_pos_t.grad is not None
    assert model.blocks[1].attn.pool_q.weight.grad is not None


@pytest.mark.parametrize(
    "variant",
    [
        [],  # separate learned space and time position embeddings, class token
        ["MVIT.SEP_POS_EMBED", "False", "MVIT.USE_MEAN_POOLING", "True"],
        ["MVIT.CLS_EMBED_ON", "False"],
        ["MVIT.SEP_POS_EMBED", "False", "MVIT.USE_FIXED_SINCOS_POS", "True"],
    ],
)
def test_vit_is_mvit_without_pooling(make_cfg, tiny_vit, variant):
    model = build_model(make_cfg(tiny_vit, variant))
    assert all(block.attn.pool_q is None and block.pool_skip is None for block in model.blocks)
    logits = model(torch.randn(2, 3, 4, 32, 32))
    assert logits.shape == (2, 5)
    logits.sum().backward()


def test_vit_with_2d_patches_embeds_each_frame(make_cfg, tiny_vit):
    cfg = make_cfg(
        tiny_vit,
        ["MVIT.PATCH_2D", "True", "MVIT.PATCH_KERNEL", "[16, 16]", "MVIT.PATCH_STRIDE", "[16, 16]"],
        ["MVIT.PATCH_PADDING", "[0, 0]", "DATA.NUM_FRAMES", "1"],
    )
    model = build_model(cfg)
    assert model.patch_embed.proj.weight.shape == (16, 3, 16, 16)
    assert model.pos_embed_temporal.shape == (1, 1, 16)
    assert model(torch.randn(2, 3, 1, 32, 32)).shape == (2, 5)


def test_position_embeddings_are_interpolated_for_other_input_sizes(make_cfg, tiny_vit):
    model = build_model(make_cfg(tiny_vit, ["MVIT.SEP_POS_EMBED", "False"]))
    assert model(torch.randn(1, 3, 8, 48, 48)).shape == (1, 5)


def test_activation_checkpointing_gives_the_same_gradients(make_cfg, tiny_mvit):
    torch.manual_seed(0)
    plain = build_model(make_cfg(tiny_mvit))
    checkpointed = build_model(make_cfg(tiny_mvit, ["MODEL.ACT_CHECKPOINT", "True"]))
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 8, 32, 32)
    plain(x).square().sum().backward()
    checkpointed(x).square().sum().backward()
    assert_same_gradients(checkpointed.named_parameters(), plain.named_parameters())


def test_head_init_scale_and_dropout(make_cfg, tiny_mvit):
    model = build_model(make_cfg(tiny_mvit, ["MVIT.HEAD_INIT_SCALE", "0.0", "MODEL.DROPOUT_RATE", "0.5"]))
    assert model.head.projection.weight.abs().sum() == 0
    assert isinstance(model.head.dropout, torch.nn.Dropout)


def test_layout_widths_heads_and_adaptive_kv_strides_of_mvitv2_s():
    q_rows = [[i, 1, 2, 2] if i in (1, 3, 14) else [i, 1, 1, 1] for i in range(16)]
    layout = mvit_layout(
        96, 1, 16, (8, 56, 56),
        dim_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
        head_mul=[[1, 2.0], [3, 2.0], [14, 2.0]],
        pool_q_stride=q_rows,
        pool_kv_stride_adaptive=[1, 8, 8],
        pool_kvq_kernel=[3, 3, 3],
        drop_path_rate=0.1,
    )
    assert [b.dim_out for b in layout] == [192, 192, 384] + [384] * 10 + [768] * 3
    assert [b.num_heads for b in layout] == [1, 2, 2] + [4] * 11 + [8] * 2
    assert [b.stride_kv for b in layout][:4] == [(1, 8, 8), (1, 4, 4), (1, 4, 4), (1, 2, 2)]
    assert layout[14].stride_kv == (1, 1, 1) and layout[14].kernel_kv == (3, 3, 3)
    assert [b.input_size for b in layout][:5] == [(8, 56, 56), (8, 56, 56), (8, 28, 28), (8, 28, 28), (8, 14, 14)]
    assert layout[0].drop_path == 0.0 and layout[-1].drop_path == pytest.approx(0.1)


def test_unknown_model_name_is_reported(make_cfg):
    with pytest.raises(ValueError) as raised:
        build_model(make_cfg(["MODEL.MODEL_NAME", "MViT3"]))
    assert str(raised.value) == (
        "MODEL.MODEL_NAME 'MViT3' is not a registered model; registered: 'MViT'; or a method: 'MAE', 'MVD', "
        "'MaskDistill', 'MaskFeat', 'SimMIM', 'VJEPA', 'VideoMAEv2'; or PySlowFast's 'MaskMViT'"
    )


@pytest.mark.parametrize(
    "variant",
    [
        ["MVIT.DIM_MUL_IN_ATT", "True", "MVIT.LAYER_SCALE_INIT_VALUE", "0.1"],
        ["MVIT.POOL_FIRST", "True"],
        ["MVIT.POOL_FIRST", "True", "MVIT.MODE", "conv_unshared"],
        ["MVIT.MODE", "avg", "MVIT.SEPARATE_QKV", "True"],
        ["MVIT.MODE", "max", "MVIT.CLS_EMBED_ON", "False"],
        ["MVIT.NORM_STEM", "True", "MVIT.USE_ABS_POS", "True", "MVIT.DROPPATH_RATE", "0.2", "MVIT.DROPOUT_RATE", "0.1"],
        ["MVIT.POOL_KV_STRIDE_ADAPTIVE", "None", "MVIT.POOL_KV_STRIDE", "[[0, 1, 4, 4], [2, 1, 2, 2]]"],
    ],
)
def test_mvit_variants_run(make_cfg, tiny_mvit, variant):
    model = build_model(make_cfg(tiny_mvit, variant))
    logits = model(torch.randn(2, 3, 8, 32, 32))
    assert logits.shape == (2, 400)
    logits.sum().backward()
