"""Each pretraining recipe has a fine-tuning recipe whose model fits it: a VideoMAE
checkpoint (fixed sine-cosine table, no class token) loads whole into the VideoMAE
fine-tuning config, and into a config with separate tables and a class token it warns,
naming what was dropped and created. The demo's ViT fine-tuning configs run."""

import logging
import os
import re

import pytest
import torch

from slowmask.config import load_config
from slowmask.checkpoint import STEM_PREFIXES, load_pretrained, save_checkpoint
from slowmask.checkpoint.pretrained import STEM_RECIPES, stem_keys
from slowmask.methods import build_model
from slowmask.models import MViTTrunk, trunk_args
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")


def demo(name: str) -> str:
    return os.path.join(REPO, "configs", "demo", name)


def built(name: str):
    torch.manual_seed(0)
    return build_model(load_config(demo(name)))


@pytest.fixture(scope="module")
def videomae_checkpoint(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("videomae") / "checkpoint_epoch_00001.pyth")
    cfg_yaml = load_config(demo("ViT_tiny_VideoMAE_PT.yaml")).dump()
    save_checkpoint(path, built("ViT_tiny_VideoMAE_PT.yaml"), None, 0, cfg_yaml)
    return path


def test_a_videomae_checkpoint_loads_whole_into_the_videomae_fine_tuning_config(videomae_checkpoint, caplog):
    with caplog.at_level(logging.INFO):
        report = load_pretrained(videomae_checkpoint, built("ViT_tiny_VideoMAE_FT.yaml"))
    assert report.unmatched_stem() == ([], [])
    assert not [name for name, why in report.skipped.items() if why != "pretraining only"]
    assert report.new == ["head.projection.weight", "head.projection.bias"]
    assert "pos_embed" in report.loaded and "patch_embed.proj.weight" in report.loaded
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_videomae_checkpoint_in_a_model_with_a_class_token_warns_naming_the_tensors(videomae_checkpoint, caplog):
    with caplog.at_level(logging.INFO):
        report = load_pretrained(videomae_checkpoint, built("ViT_tiny_FT.yaml"))
    assert report.unmatched_stem() == (
        ["pos_embed"], ["cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class"]
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0] == (
        f"{videomae_checkpoint} does not fit this model's stem: dropped from the checkpoint: pos_embed; created by "
        "the model (not pretrained): cls_token, pos_embed_spatial, pos_embed_temporal, pos_embed_class. To start from "
        "all of its stem, fine-tune with the checkpoint's stem, MVIT.CLS_EMBED_ON False MVIT.USE_ABS_POS True "
        "MVIT.SEP_POS_EMBED False MVIT.USE_FIXED_SINCOS_POS True MVIT.USE_MEAN_POOLING True (as "
        "configs/k400_ViT_B_VideoMAE_FT.yaml does); see the README's recipe table"
    )


def test_a_mae_checkpoint_in_the_videomae_fine_tuning_config_names_the_mae_recipe(tmp_path, caplog):
    path = str(tmp_path / "mae.pyth")
    save_checkpoint(path, built("ViT_tiny_MAE_PT.yaml"), None, 0, "")  # no recorded config: the tensors tell
    with caplog.at_level(logging.WARNING):
        load_pretrained(path, built("ViT_tiny_VideoMAE_FT.yaml"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert caplog.messages[0].endswith(
        "created by the model (not pretrained): pos_embed. To start from all of its stem, fine-tune with the "
        "checkpoint's stem, MVIT.CLS_EMBED_ON True MVIT.USE_ABS_POS True MVIT.SEP_POS_EMBED True (as "
        "configs/k400_ViT_B_FT.yaml does); see the README's recipe table"
    )


@pytest.mark.parametrize("keys, recipe", STEM_RECIPES)
def test_each_recipe_the_warning_names_has_the_stem_it_is_named_for(keys, recipe):
    cfg = load_config(os.path.join(REPO, "configs", recipe))
    assert {key: cfg.MVIT[key.split(".")[1]] for key in keys} == keys
    with torch.device("meta"):
        assert stem_keys(MViTTrunk(**trunk_args(cfg)).state_dict(), cfg.dump()).items() >= keys.items()


@pytest.mark.parametrize("pretrain, finetune", [
    ("ViT_tiny_MAE_PT.yaml", "ViT_tiny_FT.yaml"),
    ("ViT_tiny_VideoMAE_PT.yaml", "ViT_tiny_VideoMAE_FT.yaml"),
])
def test_the_demo_vit_fine_tuning_configs_run(pretrain, finetune, demo_data_dir, tmp_path):
    model = built(pretrain)
    start = tmp_path / "pretrained.pyth"
    save_checkpoint(str(start), model, None, 0, "")
    out = tmp_path / "ft"
    assert run_net.main([
        "--cfg", demo(finetune), "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(out),
        "TRAIN.CHECKPOINT_FILE_PATH", str(start), "DATA_LOADER.NUM_WORKERS", "0", "SOLVER.MAX_EPOCH", "1",
        "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.EVAL_PERIOD", "1", "TEST.NUM_ENSEMBLE_VIEWS", "1",
        "TEST.NUM_SPATIAL_CROPS", "1",
    ]) == 0
    log = (out / "stdout.log").read_text()
    assert "does not fit this model's stem" not in log
    assert "2 new (initialized): head.projection.weight, head.projection.bias" in log
    assert os.path.isfile(out / "test_results.json")


def stem(config: str):
    """Names and shapes of the position tables, class token and patch embedding of a
    config's encoder (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        trunk = MViTTrunk(**trunk_args(load_config(os.path.join(REPO, "configs", config))))
    return {name: tuple(value.shape) for name, value in trunk.state_dict().items() if name.startswith(STEM_PREFIXES)}


README_PAIRS = re.findall(r"`(\w+_PT)` -> `(\w+_FT)`", open(os.path.join(REPO, "README.md")).read())
SAME_STEM_AS_VIDEOMAE = [
    (f"{name}.yaml", "k400_ViT_B_VideoMAE_FT.yaml")
    for name in ("k400_ViT_B_VideoMAEv2_PT", "k400_ViT_B_MVD_PT", "k400_in1k_ViT_B_OmniMAE_PT")
]
DEMO_PAIRS = [
    ("demo/MViT_tiny_MaskFeat_PT.yaml", "demo/MViT_tiny_FT.yaml"),
    ("demo/ViT_tiny_MAE_PT.yaml", "demo/ViT_tiny_FT.yaml"),
    ("demo/ViT_tiny_MaskFeat_PT.yaml", "demo/ViT_tiny_FT.yaml"),
    ("demo/ViT_tiny_VideoMAE_PT.yaml", "demo/ViT_tiny_VideoMAE_FT.yaml"),
    ("demo/ViT_tiny_VideoMAEv2_PT.yaml", "demo/ViT_tiny_VideoMAE_FT.yaml"),
    ("demo/ViT_tiny_MVD_PT.yaml", "demo/ViT_tiny_VideoMAE_FT.yaml"),
]


def test_the_readme_pairs_every_pretraining_recipe_it_lists():
    pretraining = {pt for pt, _ in README_PAIRS}
    assert pretraining >= {"k400_ViT_B_VideoMAE_PT", "k400_ViT_B_MAE_PT", "k400_MViT_S_MaskFeat_PT", "in1k_ViT_B_SimMIM_PT"}
    assert ("k400_ViT_B_VideoMAE_PT", "k400_ViT_B_VideoMAE_FT") in README_PAIRS


@pytest.mark.parametrize(
    "pretrain, finetune",
    [(f"{pt}.yaml", f"{ft}.yaml") for pt, ft in sorted(set(README_PAIRS))] + SAME_STEM_AS_VIDEOMAE + DEMO_PAIRS,
)
def test_the_fine_tuning_config_has_the_stem_of_its_pretraining_config(pretrain, finetune):
    assert stem(pretrain) == stem(finetune)


def test_the_stems_of_the_two_vit_b_fine_tuning_configs_differ():
    assert set(stem("k400_ViT_B_FT.yaml")) - set(stem("k400_ViT_B_VideoMAE_FT.yaml")) == {
        "cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class"}
