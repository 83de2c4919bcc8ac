"""tools/export.py --format hf: a folder transformers' Auto classes load with the same
outputs; Hugging Face -> slowmask -> Hugging Face gives the same weights back; an MViT or a
stem VideoMAE cannot hold is refused in one line, leaving nothing."""

import os

import pytest
import torch
from foreign_checkpoints import CROP, FRAMES, assert_close, nonzero_, tiny_hf_config
from safetensors.torch import load_file
from tool_scripts import REPO, load_tool
from transformers import AutoModel, AutoModelForVideoClassification, VideoMAEForVideoClassification

from slowmask.checkpoint import save_checkpoint
from slowmask.checkpoint.convert import videomae_sine_table
from slowmask.config import load_config
from slowmask.methods import build_model

convert = load_tool("convert")
export = load_tool("export")
DEMO = os.path.join(REPO, "configs", "demo")


def test_hf_to_slowmask_to_hf_gives_the_same_weights_and_logits(tmp_path):
    source = VideoMAEForVideoClassification(tiny_hf_config())
    nonzero_(dict(source.named_parameters()))
    source.eval().save_pretrained(tmp_path / "hf")
    pyth, cfg = str(tmp_path / "converted.pyth"), str(tmp_path / "converted.yaml")
    assert convert.main([str(tmp_path / "hf"), "--output", pyth, "--cfg-out", cfg]) == 0
    out = tmp_path / "exported"
    assert export.main(["--cfg", cfg, "--weights", pyth, "--format", "hf", "--output", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    assert set(load_file(str(out / "model.safetensors"))) == set(load_file(str(tmp_path / "hf" / "model.safetensors")))
    back, info = AutoModelForVideoClassification.from_pretrained(str(out), output_loading_info=True)
    assert {key: value for key, value in info.items() if value} == {}
    expected = source.state_dict()
    assert set(back.state_dict()) == set(expected)
    assert all(torch.equal(value, expected[key]) for key, value in back.state_dict().items())
    clip = torch.randn(2, FRAMES, 3, CROP, CROP, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(back.eval()(clip).logits, source(clip).logits)


def test_the_encoder_of_a_pretraining_model_is_written_for_automodel(tmp_path, caplog):
    cfg = load_config(os.path.join(DEMO, "ViT_tiny_VideoMAE_PT.yaml"), ["NUM_GPUS", "0"])
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():  # VideoMAE's stem: its 1-D table in place of slowmask's 3-D one
        model.encoder.pos_embed.copy_(videomae_sine_table(model.encoder.pos_embed.shape[1], cfg.MVIT.EMBED_DIM))
    weights = str(tmp_path / "pt.pyth")
    save_checkpoint(weights, model, None, 0, cfg.dump())
    out = tmp_path / "encoder"
    assert export.main(["--cfg", os.path.join(DEMO, "ViT_tiny_VideoMAE_PT.yaml"), "--weights", weights,
                        "--format", "hf", "--output", str(out)]) == 0
    assert "the encoder is written alone; left out: decoder_embed.bias, decoder_embed.weight" in caplog.text
    encoder = AutoModel.from_pretrained(str(out)).eval()
    clip = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE,
                       generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert_close(encoder(clip.transpose(1, 2)).last_hidden_state, model.eval().encoder.forward_features(clip))


@pytest.mark.parametrize("config, message", [
    ("MViT_tiny_FT.yaml", "UsageError: --format hf writes ViTs as transformers' VideoMAE, and transformers has no "
                          "MViT: this config pools its attention (MVIT.POOL_*)"),
    ("ViT_tiny_FT.yaml", "UsageError: --format hf: transformers' VideoMAE cannot hold this model: it has a class "
                         "token (MVIT.CLS_EMBED_ON True); it has no single position table"),
    ("ViT_tiny_VideoMAE_FT.yaml", "UsageError: --format hf: transformers' VideoMAE cannot hold this model: its "
                                  "position table is not VideoMAE's fixed 1-D sine table"),
])
def test_what_videomae_cannot_hold_is_refused_in_one_line(config, message, tmp_path, capsys):
    out = tmp_path / "hf"
    assert export.main(["--cfg", os.path.join(DEMO, config), "--format", "hf", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert os.listdir(tmp_path) == []
