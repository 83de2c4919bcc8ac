"""V-JEPA's published layouts through the registry and tools/convert.py: a transformers
VJEPA2Model folder and an official training .pt are detected, converted with the report,
and the written checkpoint loads whole into the model of the written config."""

import logging

import torch
from foreign_checkpoints import nonzero_
from tool_scripts import load_tool
from transformers import VJEPA2Config, VJEPA2Model

from slowmask.checkpoint import read_checkpoint
from slowmask.checkpoint.convert import convert_checkpoint
from slowmask.config import load_config
from slowmask.methods import build_model

convert = load_tool("convert")


def hf_folder(path) -> str:
    config = VJEPA2Config(
        patch_size=16, crop_size=64, frames_per_clip=4, tubelet_size=2, hidden_size=64, num_attention_heads=2,
        num_hidden_layers=2, pred_hidden_size=40, pred_num_attention_heads=2, pred_num_hidden_layers=2,
        pred_num_mask_tokens=3, mlp_ratio=2.0, pred_mlp_ratio=2.0,
    )
    model = VJEPA2Model(config)
    nonzero_(dict(model.named_parameters()))
    model.save_pretrained(path)
    return str(path)


def test_a_hf_vjepa2_folder_converts_and_loads_whole_into_the_written_config(tmp_path, caplog):
    folder = hf_folder(tmp_path / "hf")
    converted = convert_checkpoint(folder)
    assert converted.report.format == "hf_vjepa2" and converted.report.unused == []
    assert converted.config["MODEL.MODEL_NAME"] == "VJEPA"
    out, cfg_out = tmp_path / "vjepa.pyth", tmp_path / "vjepa.yaml"
    with caplog.at_level(logging.INFO):
        assert convert.main([folder, "--output", str(out), "--cfg-out", str(cfg_out)]) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("slowmask.checkpoint")]
    model = build_model(load_config(str(cfg_out), ["NUM_GPUS", "0"]))
    model.load_state_dict(read_checkpoint(str(out))["model_state"], strict=True)


def test_an_official_vjepa_checkpoint_is_detected_and_its_context_encoder_reported_unused(tmp_path, caplog):
    state = convert_checkpoint(hf_folder(tmp_path / "hf")).state
    networks = {
        "encoder": {k: v for k, v in state.items() if not k.startswith(("pred_head.", "target."))},
        "target_encoder": {k[len("target.encoder."):]: v for k, v in state.items() if k.startswith("target.encoder.")},
        "predictor": {k[len("pred_head."):]: v for k, v in state.items() if k.startswith("pred_head.")},
    }
    checkpoint = {name: {f"module.backbone.{k}": v for k, v in part.items()} for name, part in networks.items()}
    path = tmp_path / "vjepa.pt"
    torch.save({**checkpoint, "epoch": 3, "opt": {"state": {}, "param_groups": []}}, path)
    converted = convert_checkpoint(str(path), {"num_heads": 2, "pred_num_heads": 2})
    assert converted.report.format == "vjepa"
    assert converted.report.unused == sorted(f"encoder.module.backbone.{k}" for k in networks["encoder"])
    with caplog.at_level(logging.WARNING):
        converted.report.log()
    assert f"{len(networks['encoder'])} source tensors left unused" in caplog.text
