"""V-JEPA's published layouts map onto slowmask's V-JEPA: a tiny random transformers
`VJEPA2Model` (every parameter non-zero, no download) gives the same encoder tokens and
predictor outputs as slowmask's encoder and predictor with the mapped weights; an official
training checkpoint ({"encoder", "target_encoder", "predictor"} under `module.backbone.`)
loads with its target encoder as the encoder."""

import pytest
import torch
from transformers import VJEPA2Config, VJEPA2Model

from slowmask.checkpoint.convert.vjepa import flatten_state, from_hf_vjepa2, from_vjepa_checkpoint
from slowmask.config import get_cfg
from slowmask.methods.vjepa import VJEPA, jepa_networks
from slowmask.models.ema import MomentumSchedule

FRAMES, CROP = 4, 64


def _hf_model():
    config = VJEPA2Config(
        patch_size=16, crop_size=CROP, frames_per_clip=FRAMES, tubelet_size=2, hidden_size=64, num_attention_heads=2,
        num_hidden_layers=2, pred_hidden_size=40, pred_num_attention_heads=2, pred_num_hidden_layers=2,
        pred_num_mask_tokens=3, mlp_ratio=2.0, pred_mlp_ratio=2.0,
    )
    torch.manual_seed(0)
    model = VJEPA2Model(config).eval()
    with torch.no_grad():  # every parameter non-zero and away from its initial value
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.3 + 0.05)
    return model, config


def _slowmask_model(config_keys):
    cfg = get_cfg()
    cfg.MVIT.DROPPATH_RATE = 0.0
    for key, value in config_keys.items():
        node, leaf = key.split(".")
        cfg[node][leaf] = value
    encoder, predictor = jepa_networks(cfg)
    stand_in = [lambda generator: torch.zeros(encoder.patch_grid, dtype=torch.bool)]
    return VJEPA(encoder, predictor, stand_in, MomentumSchedule(0.99, 0.99, 1)).eval()


@torch.no_grad()
def test_transformers_vjepa2_weights_give_its_encoder_tokens_and_predictor_outputs():
    reference, config = _hf_model()
    state, keys, used = from_hf_vjepa2(reference.state_dict(), config.to_dict())
    assert used == set(reference.state_dict())
    assert (keys["MVIT.USE_ROPE"], keys["JEPA.PRED_NUM_MASK_TOKENS"], keys["MVIT.MLP_RATIO"]) == (True, 3, 2.0)
    model = _slowmask_model(keys)
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected

    clip = torch.randn(2, 3, FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(1))
    expected_tokens = reference(pixel_values_videos=clip.transpose(1, 2), skip_predictor=True).last_hidden_state
    tokens = model.encoder.forward_features(clip)
    assert tokens.shape == expected_tokens.shape == (2, 2 * 4 * 4, 64)
    assert torch.allclose(tokens, expected_tokens, atol=1e-5 * float(expected_tokens.abs().max()), rtol=0)
    assert torch.equal(model.target.encoder.forward_features(clip), tokens)

    context = torch.tensor([[0, 1, 4, 9, 17, 30], [2, 3, 5, 8, 13, 21]])
    target = torch.tensor([[6, 7, 31], [0, 16, 27]])
    out = reference(pixel_values_videos=clip.transpose(1, 2), context_mask=[context], target_mask=[target])
    expected = out.predictor_output.last_hidden_state  # transformers' predictor uses mask token 1
    context_tokens = torch.gather(tokens, 1, context[..., None].expand(-1, -1, 64))
    pred = model.pred_head(context_tokens, context, target, model.encoder.patch_grid, 1)
    assert pred.shape == expected.shape == (2, 3, 64)
    assert torch.allclose(pred, expected, atol=1e-5 * float(expected.abs().max()), rtol=0)
    other_token = model.pred_head(context_tokens, context, target, model.encoder.patch_grid, 0)
    assert not torch.allclose(other_token, expected, atol=1e-3 * float(expected.abs().max()))


def _official_checkpoint(model):
    """A training checkpoint in facebookresearch/vjepa2's layout from slowmask's model."""
    state = model.state_dict()
    encoder = {f"module.backbone.{k}": v for k, v in state.items() if not k.startswith(("pred_head.", "target."))}
    target = {f"module.backbone.{k[len('target.encoder.'):]}": v.clone() + 1.0
              for k, v in state.items() if k.startswith("target.encoder.")}
    predictor = {f"module.backbone.{k[len('pred_head.'):]}": v for k, v in state.items() if k.startswith("pred_head.")}
    return {"encoder": encoder, "target_encoder": target, "predictor": predictor, "epoch": 3, "lr": 1e-4}


@torch.no_grad()
def test_an_official_checkpoint_loads_with_its_target_encoder_as_the_encoder():
    reference, config = _hf_model()
    state, keys, _ = from_hf_vjepa2(reference.state_dict(), config.to_dict())
    source = _slowmask_model(keys)
    source.load_state_dict(state)
    checkpoint = _official_checkpoint(source)
    mapped, official_keys, used = from_vjepa_checkpoint(checkpoint, {"num_heads": 2, "pred_num_heads": 2})
    for key in ("MVIT.EMBED_DIM", "MVIT.DEPTH", "MVIT.USE_ROPE", "JEPA.PRED_EMBED_DIM", "JEPA.PRED_DEPTH",
                "JEPA.PRED_NUM_MASK_TOKENS", "MVIT.PATCH_KERNEL", "MVIT.MLP_RATIO"):
        assert official_keys[key] == keys[key], key
    # The context encoder is left for the report to name as unused; the target encoder fills both.
    assert used == {name for name in flatten_state(checkpoint) if not name.startswith("encoder.")}
    model = _slowmask_model(official_keys)
    model.load_state_dict(mapped, strict=True)
    name = "blocks.1.attn.qkv.weight"
    assert torch.equal(model.encoder.state_dict()[name], source.encoder.state_dict()[name] + 1.0)
    assert torch.equal(model.target.encoder.state_dict()[name], model.encoder.state_dict()[name])
    context_encoder, _, used = from_vjepa_checkpoint(checkpoint, {"encoder": "encoder", "num_heads": 2})
    assert torch.equal(context_encoder[name], source.encoder.state_dict()[name])
    assert torch.equal(context_encoder[f"target.encoder.{name}"], source.encoder.state_dict()[name] + 1.0)
    assert used == set(flatten_state(checkpoint))


def test_an_unknown_width_or_a_missing_part_is_named():
    with pytest.raises(ValueError, match="no 'target_encoder' tensors under 'module.backbone.'; it holds \\['encoder'\\]"):
        from_vjepa_checkpoint({"encoder": {"module.backbone.norm.weight": torch.ones(3)}}, {})
    checkpoint = {
        part: {"module.backbone.patch_embed.proj.weight": torch.ones(100, 3, 2, 16, 16),
               "module.backbone.blocks.0.mlp.fc1.weight": torch.ones(400, 100),
               "module.backbone.predictor_embed.weight": torch.ones(40, 100)}
        for part in ("target_encoder", "predictor")
    }
    with pytest.raises(ValueError, match="heads of a 100-wide ViT is not known: give source_config\\['num_heads'\\]"):
        from_vjepa_checkpoint(checkpoint, {})
