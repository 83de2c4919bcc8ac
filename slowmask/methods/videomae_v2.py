"""VideoMAE V2's dual masking (Wang et al., 2023, Sec. 3.2): MAE's composition in which the
decoder, too, runs on a subset of the tokens. The encoder sees the visible tokens (tube
mask, 90 %); a second mask on the token grid (running cell, 50 %) drops part of the masked
tokens from the decoder, which then takes the visible latents plus the kept masked tokens
(mask token + decoder position), and the loss is taken on those kept masked tokens only.
At 90 % / 50 % the decoder runs on 160 + 704 of the 1568 tokens of a 16x224 clip.

VideoMAEv2's code (`models/modeling_pretrain.py`, `engine_for_pretraining.py`) also gives
the decoder mask tokens at the places the decoder mask keeps but the encoder saw, and leaves
their predictions out of the loss; here the decoder does not get them (they carry no
information and no loss).

The decoder mask is drawn in the forward pass from torch's global generator (as dropout's
draws are; checkpoints save its state), one phase per clip, in training only: in eval mode
the decoder reconstructs every masked token (VideoMAE's output). The data path is unchanged.

- The encoder sees the visible tokens (MAE's sparse encoder, mae.py).
- The decoder sees the visible latents and the masked tokens the decoder mask keeps
  (MASK.DECODER_MASK_TYPE "running_cell" at MASK.DECODER_MASK_RATIO).
- The target: MASK.TARGET (normalized pixels) of the kept masked tokens.
- The loss: MODEL.LOSS_FUNC on those tokens (MASK.LOSS_TOKENS must be "masked").
- After an optimizer update: nothing.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from slowmask import targets
from slowmask.geometry import Grid
from slowmask.masking import MaskGenerator, build_decoder_mask_generator
from slowmask.masking.grids import upsample_mask
from slowmask.models import build_loss
from slowmask.models.mae import MAEEncoder, gather_tokens

from .build import METHOD_REGISTRY
from .mae import sparse_parts
from .pretrainer import MaskedPretrainer


def decoded_positions(token_mask: Tensor, decoder_drop: Tensor) -> Tuple[Tensor, Tensor]:
    """The tokens the decoder runs on: the visible ones and the masked ones it keeps.

    Args:
        token_mask: (B, N) bool, True = hidden from the encoder.
        decoder_drop: (B, N) bool, True = dropped from the decoder (where also hidden).
    Returns:
        positions (B, K) int64, increasing (the (t, h, w) order of the sequence), and
        is_target (B, K) bool: True where the token is a kept masked token (a loss row).
    Every sample must keep the same number of masked tokens.
    """
    kept_masked = (token_mask & ~decoder_drop).sum(dim=1)
    if (kept_masked != kept_masked[0]).any():
        raise ValueError(
            "the decoder mask keeps different numbers of masked tokens per clip, "
            f"{sorted(set(kept_masked.tolist()))}: dual masking needs a tube encoder mask "
            "(AUG.MASK_TYPE tube) and a token grid whose t is a multiple of the running cell's area (4)"
        )
    if int(kept_masked[0]) == 0:
        raise ValueError("the decoder mask drops every masked token; lower MASK.DECODER_MASK_RATIO")
    dropped = token_mask & decoder_drop
    count = int((~dropped[0]).sum())
    positions = torch.argsort(dropped.to(torch.int8), dim=1, stable=True)[:, :count]
    return positions, token_mask.gather(1, positions)


@METHOD_REGISTRY.register(name="VideoMAEv2")
class DualMaskPretrainer(MaskedPretrainer):
    """model(x, mask) -> {"pred", "target", "loss"}, with the decoder on part of the tokens.

    Args:
        encoder: the sparse MAE encoder, `encoder(x, mask)` -> ([(B, [1+]N, D)], [grid]):
            the decoder's input for every token, of which the kept ones are gathered.
        head: the decoder, `head([(B, [1+]K, D)])` -> [(B, K, C)] for every token it gets.
        target: `target(x, grid)` -> (B, N, C), as MaskedPretrainer's.
        loss: `loss(pred, target)` on the loss rows -> scalar.
        decoder_mask: `decoder_mask(generator)` -> bool (t, h, w) on the token grid,
            True = dropped from the decoder (e.g. masking's RunningCellMaskGenerator).

    The state dict is MaskedPretrainer's (the decoder mask has no parameters), so a
    checkpoint moves to and from plain MAE / VideoMAE.
    """

    def __init__(
        self,
        encoder: MAEEncoder,
        head: nn.Module,
        target: nn.Module,
        loss: Callable[[Tensor, Tensor], Tensor],
        decoder_mask: MaskGenerator,
    ) -> None:
        super().__init__(encoder, head, target, loss)
        self.decoder_mask = decoder_mask

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "DualMaskPretrainer":
        """MAE's parts (mae.py), the decoder mask MASK.DECODER_MASK_TYPE names on the token
        grid, MODEL.LOSS_FUNC."""
        encoder, head, target = sparse_parts(cfg, targets.build_target)
        decoder_mask = build_decoder_mask_generator(cfg, encoder.patch_grid)
        if decoder_mask is None:
            raise ValueError('VideoMAE V2 needs a decoder mask: set MASK.DECODER_MASK_TYPE (e.g. "running_cell")')
        if cfg.MASK.LOSS_TOKENS != "masked":
            raise ValueError(
                f"MASK.DECODER_MASK_TYPE {cfg.MASK.DECODER_MASK_TYPE!r} takes the loss on the masked tokens the "
                f'decoder keeps: set MASK.LOSS_TOKENS "masked" (got {cfg.MASK.LOSS_TOKENS!r})'
            )
        return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), decoder_mask)

    def draw_decoder_mask(self, batch: int, grid: Grid, device: torch.device) -> Tensor:
        """(B, N) bool, True = dropped from the decoder, one draw per clip from torch's
        global generator."""
        masks = torch.stack([self.decoder_mask(torch.default_generator) for _ in range(batch)])
        if tuple(masks.shape[1:]) != tuple(grid):
            raise ValueError(
                f"the decoder mask's grid {tuple(masks.shape[1:])} is not the token grid {tuple(grid)}; "
                "build it on the token grid"
            )
        return masks.flatten(1).to(device)

    def forward(self, x: Tensor, mask: Tensor, decoder_drop: Optional[Tensor] = None) -> Dict[str, Any]:
        """Predict the target of the masked tokens the decoder keeps.

        Args:
            x: (B, 3, T, H, W) normalized clip.
            mask: (B, t, h, w) bool on the mask grid, True = masked (the encoder's mask).
            decoder_drop: (B, N) bool on the token grid, True = dropped from the decoder;
                when None, drawn from `decoder_mask` in training and all False in eval mode.
        Returns:
            "pred", "target": (N_loss, C), the kept masked tokens in (batch, t, h, w)
            order; "loss": scalar `loss(pred, target)`; "decoder_tokens": K, the
            tokens per clip the decoder ran on (prefix excluded).
        """
        features, grids = self.encoder(x, mask)
        full, grid = features[0], grids[0]  # (B, [1+]N, D): every token laid out for the decoder
        token_mask = upsample_mask(mask, grid).flatten(1)  # (B, N)
        if decoder_drop is None and self.training:
            decoder_drop = self.draw_decoder_mask(x.shape[0], grid, x.device)
        elif decoder_drop is None:
            # Dual masking saves training compute; evaluation reconstructs every masked token.
            decoder_drop = torch.zeros_like(token_mask)
        positions, is_target = decoded_positions(token_mask, decoder_drop)
        prefix = full.shape[1] - token_mask.shape[1]
        decoder_input = torch.cat((full[:, :prefix], gather_tokens(full[:, prefix:], positions)), dim=1)
        prediction = self.pred_head([decoder_input])[0]  # (B, K, C)
        pred = prediction[is_target]
        target = self._masked_target(x, grid, token_mask & ~decoder_drop)
        loss = self.loss_fn(pred.float(), target)
        return {"pred": pred, "target": target, "loss": loss, "decoder_tokens": positions.shape[1]}


__all__: List[str] = ["DualMaskPretrainer", "decoded_positions"]
