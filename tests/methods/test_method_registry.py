"""The METHOD registry: a method registered from outside the package builds from its config
name through `build_model`; PySlowFast's model names and MASK.* flags translate to one
method each; every yaml under configs/ names a method or an architecture."""

import glob
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from slowmask import targets
from slowmask.config import get_cfg, load_config
from slowmask.methods import METHOD_REGISTRY, MaskedPretrainer, build_model, method_name
from slowmask.models import MODEL_REGISTRY, build_loss

from tool_scripts import REPO

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
# 4 frames of 16 x 16 pixels, 2x8x8 tokens: a 2x2x2 token grid.
TINY = ["DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "16", "MVIT.EMBED_DIM", "12", "MASK.TARGET", "pixel",
        "MODEL.LOSS_FUNC", "mse"]


class PatchEncoder(nn.Module):
    """encoder(x, mask) -> ([(B, 8, dim) tokens], [(2, 2, 2)]): 2x8x8 patches projected,
    the masked ones zeroed."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, dim, kernel_size=(2, 8, 8), stride=(2, 8, 8))

    def forward(self, x, mask):
        tokens = self.proj(x).flatten(2).transpose(1, 2)  # (B, 8, dim)
        return [tokens * ~mask.flatten(1).unsqueeze(-1)], [(2, 2, 2)]


class LinearHead(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, features):
        return [self.proj(features[0])]


class TinyMethod(MaskedPretrainer):
    """A user's method: a patch projection, a linear head, the target and loss the config names."""

    @classmethod
    def from_config(cls, cfg):
        target = targets.build_target(cfg)
        encoder = PatchEncoder(cfg.MVIT.EMBED_DIM)
        head = LinearHead(cfg.MVIT.EMBED_DIM, target.dim((2, 8, 8)))
        return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC))


@pytest.fixture
def tiny_method_registered(monkeypatch):
    monkeypatch.setattr(METHOD_REGISTRY, "_obj_map", dict(METHOD_REGISTRY._obj_map))
    METHOD_REGISTRY.register(TinyMethod, name="TinyMethod")


def test_a_method_registered_outside_the_package_builds_from_its_config_name(tiny_method_registered):
    cfg = get_cfg()
    cfg.merge_from_list(TINY + ["MODEL.MODEL_NAME", "TinyMethod"])
    torch.manual_seed(0)
    model = build_model(cfg)
    assert type(model) is TinyMethod and model.encoder.proj.out_channels == 12
    # The pixel target with MASK.TIME_STRIDE_LOSS: one frame of 8x8 RGB pixels per token.
    assert model.pred_head.proj.out_features == 8 * 8 * 3
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[:, 0] = True  # the first of the two temporal slices is masked: 4 tokens per clip
    out = model(torch.randn(2, 3, 4, 16, 16), mask)
    assert out["pred"].shape == out["target"].shape == (8, 192)
    torch.testing.assert_close(out["loss"], F.mse_loss(out["pred"], out["target"]))
    out["loss"].backward()
    assert model.encoder.proj.weight.grad is not None


def test_an_unregistered_method_lists_the_methods_and_models():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.MODEL_NAME", "TinyMethod"])
    with pytest.raises(ValueError) as raised:
        build_model(cfg)
    assert str(raised.value).startswith(
        "MODEL.MODEL_NAME 'TinyMethod' is not a registered model; registered: 'MViT'; or a method: 'MAE', "
    )


@pytest.mark.parametrize(
    "opts, method",
    [
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.PRED_HOG", "True"], "MaskFeat"),
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.TARGET", "hog"], "MaskFeat"),
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.PRED_HOG", "False"], "SimMIM"),
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.TARGET", "teacher"], "MaskDistill"),
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.MAE_ON", "True"], "MAE"),
        (["MODEL.MODEL_NAME", "MAE"], "MAE"),
        (["MODEL.MODEL_NAME", "MAE", "MASK.TARGET", "teacher"], "MVD"),
        (["MODEL.MODEL_NAME", "MAE", "MASK.DECODER_MASK_TYPE", "running_cell"], "VideoMAEv2"),
        (["MODEL.MODEL_NAME", "MaskMViT", "MASK.MAE_ON", "True", "MASK.DECODER_MASK_TYPE", "running_cell"], "VideoMAEv2"),
        (["MODEL.MODEL_NAME", "SimMIM", "MASK.PRED_HOG", "True"], "SimMIM"),
        (["MODEL.MODEL_NAME", "MViT"], "MViT"),
    ],
)
def test_pyslowfast_names_and_flags_translate_to_one_method(opts, method):
    cfg = get_cfg()
    cfg.merge_from_list(opts)
    assert method_name(cfg) == method


def test_simmim_named_with_another_target_is_refused():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.MODEL_NAME", "SimMIM", "MASK.TARGET", "hog", "MASK.ENABLE", "True"])
    with pytest.raises(ValueError) as raised:
        build_model(cfg)
    assert str(raised.value) == (
        "SimMIM regresses pixels, but MASK.TARGET is 'hog': set MASK.TARGET \"pixel\", "
        'or MODEL.MODEL_NAME "MaskFeat" for another target'
    )


def test_mvd_named_with_another_target_is_refused():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.MODEL_NAME", "MVD", "MASK.TARGET", "pixel", "MASK.ENABLE", "True"])
    with pytest.raises(ValueError) as raised:
        build_model(cfg)
    assert str(raised.value) == "MVD distils a teacher, but MASK.TARGET is 'pixel': set MASK.TARGET \"teacher\""


def test_every_config_names_a_method_or_an_architecture():
    expected = {"k400_ViT_B_MVD_PT.yaml": "MVD", "k400_ViT_B_VideoMAEv2_PT.yaml": "VideoMAEv2",
                "in1k_ViT_B_SimMIM_PT.yaml": "SimMIM", "k400_MViT_L_MaskFeat_PT.yaml": "MaskFeat",
                "k400_ViT_B_VideoMAE_PT.yaml": "MAE", "demo/MViT_tiny_distill_unlabelled_PT.yaml": "MaskDistill",
                "k400_MViT_L_FT.yaml": "MViT"}
    names = {}
    for path in CONFIGS:
        name = method_name(load_config(path))
        assert name in METHOD_REGISTRY or name in MODEL_REGISTRY, path
        names[os.path.relpath(path, os.path.join(REPO, "configs"))] = name
    assert {key: names[key] for key in expected} == expected
