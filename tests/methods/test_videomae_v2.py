"""VideoMAE V2's dual masking: the decoder runs on the visible tokens plus the configured
fraction of the masked ones, the loss on those kept masked tokens only; with nothing dropped
it is plain VideoMAE; the tiny recipe trains and the full recipe builds through run_net."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.masking import build_mask_generator
from slowmask.methods import MaskedPretrainer, build_model
from slowmask.methods.videomae_v2 import DualMaskPretrainer, decoded_positions

from tool_scripts import REPO, load_tool

DEMO = os.path.join(REPO, "configs", "demo", "ViT_tiny_VideoMAEv2_PT.yaml")
FULL = os.path.join(REPO, "configs", "k400_ViT_B_VideoMAEv2_PT.yaml")
GRID = (4, 4, 4)  # the demo's token grid: 8x64x64 clips, 2x16x16 patches


def _model_and_batch(batch=2, seed=0):
    """The demo's model, smooth random clips (B, 3, 8, 64, 64) and tube masks (B, 4, 4, 4)."""
    cfg = load_config(DEMO)
    torch.manual_seed(seed)
    model = build_model(cfg)
    masks = build_mask_generator(cfg)
    encoder_masks = torch.stack([masks(torch.Generator().manual_seed(i)) for i in range(batch)])
    coarse = torch.randn(batch, 3, 8, 8, 8, generator=torch.Generator().manual_seed(seed))
    clips = torch.nn.functional.interpolate(coarse, size=(8, 64, 64), mode="trilinear")
    return model, clips, encoder_masks


def _token_pixels(clips, t, h, w):
    """The pixels of token (t, h, w) of the demo's 2x16x16 patches: a view to write into."""
    return clips[:, :, 2 * t : 2 * t + 2, 16 * h : 16 * h + 16, 16 * w : 16 * w + 16]


def test_decoder_tokens_are_the_visible_and_half_of_the_masked():
    model, clips, masks = _model_and_batch(batch=3)
    assert isinstance(model, DualMaskPretrainer)
    out = model(clips, masks)
    # Tube 90 % of 4x4 per frame: 14 masked, 2 visible; the running cell keeps 28 of the 56 masked.
    assert out["decoder_tokens"] == 2 * 4 + 28
    assert out["pred"].shape == out["target"].shape == (3 * 28, 1536)


def test_decoded_positions_keep_the_configured_fraction_of_the_masked_tokens_exactly():
    model, _, masks = _model_and_batch(batch=8)
    token_mask = masks.flatten(1)
    for seed in range(3):
        torch.manual_seed(seed)
        drop = model.draw_decoder_mask(8, GRID, torch.device("cpu"))
        positions, is_target = decoded_positions(token_mask, drop)
        assert (is_target.sum(dim=1) == 28).all()  # 0.5 x 56 masked tokens, every clip
        assert ((~token_mask).gather(1, positions).sum(dim=1) == 8).all()  # every visible token
        assert (positions.diff(dim=1) > 0).all()


def test_loss_reads_only_the_masked_tokens_the_decoder_keeps():
    model, clips, masks = _model_and_batch(batch=1)
    drop = model.draw_decoder_mask(1, GRID, torch.device("cpu"))
    token_mask = masks.flatten(1)
    kept = (token_mask & ~drop)[0].view(GRID).nonzero().tolist()
    dropped = (token_mask & drop)[0].view(GRID).nonzero().tolist()
    with torch.no_grad():
        out = model(clips, masks, drop)
        changed_dropped = clips.clone()
        for t, h, w in dropped:
            _token_pixels(changed_dropped, t, h, w).copy_(torch.rand(3, 2, 16, 16))
        changed_kept = clips.clone()
        _token_pixels(changed_kept, *kept[0]).copy_(torch.rand(3, 2, 16, 16))
        after_dropped, after_kept = model(changed_dropped, masks, drop), model(changed_kept, masks, drop)
    assert out["loss"] == torch.nn.functional.mse_loss(out["pred"], out["target"])
    # Dropped masked tokens are neither encoded nor targets: nothing of the loss moves.
    assert torch.equal(after_dropped["target"], out["target"]) and torch.equal(after_dropped["pred"], out["pred"])
    assert after_dropped["loss"] == out["loss"]
    # A kept masked token's pixels are the first target row, and only that row changes.
    changed_rows = (after_kept["target"] != out["target"]).any(dim=1)
    assert changed_rows.tolist() == [True] + [False] * 27
    assert torch.equal(after_kept["pred"], out["pred"])


def test_nothing_dropped_is_plain_videomae():
    model, clips, masks = _model_and_batch(batch=2)
    plain = MaskedPretrainer(model.encoder, model.pred_head, model.target, model.loss_fn)
    with torch.no_grad():
        dual = model(clips, masks, torch.zeros(2, 64, dtype=torch.bool))
        reference = plain(clips, masks)
    assert dual["decoder_tokens"] == 64
    torch.testing.assert_close(dual["pred"], reference["pred"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dual["loss"], reference["loss"], rtol=1e-6, atol=1e-7)


def test_eval_mode_decodes_every_masked_token():
    model, clips, masks = _model_and_batch(batch=2)
    with torch.no_grad():
        out = model.eval()(clips, masks)
        reference = model(clips, masks, torch.zeros(2, 64, dtype=torch.bool))
    assert out["decoder_tokens"] == 64 and out["pred"].shape == (2 * 56, 1536)
    assert torch.equal(out["pred"], reference["pred"])


def test_a_random_encoder_mask_fails_with_the_fix():
    model, clips, _ = _model_and_batch(batch=2)
    masks = torch.zeros(2, 64, dtype=torch.bool)
    masks[0, :56] = True
    masks[1, 8:] = True
    drop = torch.zeros(2, 64, dtype=torch.bool)
    drop[0, :4] = True  # clip 0 keeps 52 masked tokens, clip 1 keeps 56
    message = r"keeps different numbers of masked tokens per clip, \[52, 56\].*AUG.MASK_TYPE tube"
    with pytest.raises(ValueError, match=message):
        model(clips, masks.view(2, *GRID), drop)


def test_an_unregistered_decoder_mask_names_the_key():
    cfg = load_config(DEMO, ["MASK.DECODER_MASK_TYPE", "checkerboard"])
    with pytest.raises(ValueError, match="MASK.DECODER_MASK_TYPE 'checkerboard' is not a registered mask"):
        build_model(cfg)


def test_tiny_recipe_trains_with_falling_loss():
    model, clips, masks = _model_and_batch(batch=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(clips, masks)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.85 * first, losses


def test_full_recipe_builds_through_run_net():
    run_net = load_tool("run_net")
    cfg = run_net.config_from_args(run_net.parse_args(["--cfg", FULL]))
    assert (cfg.MASK.DECODER_MASK_TYPE, cfg.MASK.DECODER_MASK_RATIO, cfg.AUG.MASK_RATIO) == ("running_cell", 0.5, 0.9)
    with torch.device("meta"):
        model = build_model(cfg)
    assert isinstance(model, DualMaskPretrainer)
    assert model.decoder_mask.grid == (8, 14, 14) and model.decoder_mask.num_masked_per_cell == 2
    # VideoMAE's ViT-B and decoder: dual masking adds no parameters.
    assert sum(p.numel() for p in model.parameters()) == 96_028_416
