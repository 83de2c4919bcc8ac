"""Masked pretraining as a composition: encoder + prediction head + target + loss, the
forward pass every method of this package shares.

MaskFeat is a dense encoder with a mask token, a linear head, the HOG target and a
masked MSE; other methods swap the parts (maskfeat.py, mae.py, ...), not this file.
"""

import contextlib
from typing import Any, Callable, Dict, List, Mapping

import torch
from torch import Tensor, nn

from slowmask.geometry import Grid
from slowmask.masking.grids import upsample_mask

ENCODER_PREFIX = "encoder."

# Which tokens of the prediction grid the loss is on, from the (B, t*h*w) mask (True = masked):
# the masked ones (MaskFeat, MAE, MVD), the visible ones (UMT's unmasked-token alignment), or
# all of them (a dense encoder's visible tokens regress their own target beside the masked ones).
LOSS_TOKENS: Dict[str, Callable[[Tensor], Tensor]] = {
    "masked": lambda masked: masked,
    "visible": lambda masked: ~masked,
    "all": torch.ones_like,
}


class MaskedPretrainer(nn.Module):
    """model(x, mask) -> {"pred", "target", "loss"}: regress a target of the masked tokens.

    Args:
        encoder: `encoder(x, mask)` -> (features, grids [(t_i, h_i, w_i)]), one entry per
            prediction depth; features are what the head takes (MaskFeat: (B, N_i, D_i)
            grid tokens; MAE: the decoder's input sequence).
        head: `head(features)` -> [(B, N_i, C_i)] predictions for every token of each
            grid, N_i = t_i*h_i*w_i in (t, h, w) order.
        target: `target(x, grid)` -> (B, t*h*w, C) float32. Without parameters or
            persistent buffers, unless it declares `state_in_checkpoint = True`.
        loss: `loss(pred, target)` on the masked rows -> scalar.
        loss_tokens: a LOSS_TOKENS name: the loss is on the "masked" tokens, on the
            "visible" ones, or on "all".

    A target declares how it runs with two class attributes (both False when absent):
    `runs_under_autocast` (a teacher encoder): it runs under the caller's autocast; other
    targets run in float32 without autocast. `state_in_checkpoint` (an EMA target
    encoder): its parameters and persistent buffers are part of the model, saved under
    `target.` and given to the optimizer where they require gradient (an EMA copy keeps
    requires_grad False and is updated after each optimizer step). A target that holds
    state without declaring it is refused: its state would silently enter checkpoints.

    The state dict holds the encoder's parameters without a prefix and the head's
    under `pred_head.`: PySlowFast's flat MaskMViT names (cls_token, blocks.0...,
    mask_token, pred_head.projections.0.weight), so checkpoints move both ways.
    Attribute names (and named_parameters) keep the `encoder.` prefix.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        target: nn.Module,
        loss: Callable[[Tensor, Tensor], Tensor],
        loss_tokens: str = "masked",
    ) -> None:
        super().__init__()
        if loss_tokens not in LOSS_TOKENS:
            raise ValueError(f"loss tokens {loss_tokens!r} are unknown; use one of {sorted(LOSS_TOKENS)}")
        if len(target.state_dict()) > 0 and not getattr(target, "state_in_checkpoint", False):
            raise ValueError(
                f"the target has parameters or persistent buffers {list(target.state_dict())}: register "
                "buffers with persistent=False, or declare `state_in_checkpoint = True` on the target "
                "to save its state in the checkpoint under `target.`"
            )
        self.encoder = encoder
        self.pred_head = head
        self.target = target
        self.loss_fn = loss
        self.loss_tokens = loss_tokens
        self.register_state_dict_post_hook(_flatten_encoder_keys)
        self.register_load_state_dict_pre_hook(_nest_encoder_keys)

    def _masked_target(self, x: Tensor, grid: Grid, selected: Tensor) -> Tensor:
        """(N_selected, C) float32 target rows, computed without gradient (and without
        autocast unless the target runs under it)."""
        keep_autocast = getattr(self.target, "runs_under_autocast", False)
        autocast = contextlib.nullcontext() if keep_autocast else torch.autocast(device_type=x.device.type, enabled=False)
        with torch.no_grad(), autocast:
            return self.target(x.detach().float(), grid).float()[selected]

    def forward(self, x: Tensor, mask: Tensor) -> Dict[str, Any]:
        """Predict the target of the masked tokens.

        Args:
            x: (B, 3, T, H, W) normalized clip.
            mask: (B, t, h, w) bool on the mask grid, True = masked.
        Returns:
            "pred", "target": (N_masked, C), rows in (batch, t, h, w) order of the
                prediction grid (lists of these, one per depth, when the encoder
                predicts at several depths);
            "loss": scalar, the sum over depths of `loss(pred, target)`.
        """
        features, grids = self.encoder(x, mask)
        predictions = self.pred_head(features)
        preds: List[Tensor] = []
        targets: List[Tensor] = []
        loss = x.new_zeros((), dtype=torch.float32)
        for prediction, grid in zip(predictions, grids):
            selected = LOSS_TOKENS[self.loss_tokens](upsample_mask(mask, grid).flatten(1))  # (B, t*h*w)
            pred, target = prediction[selected], self._masked_target(x, grid, selected)
            loss = loss + self.loss_fn(pred.float(), target)
            preds.append(pred)
            targets.append(target)
        if len(preds) == 1:
            return {"pred": preds[0], "target": targets[0], "loss": loss}
        return {"pred": preds, "target": targets, "loss": loss}


def _flatten_encoder_keys(
    module: MaskedPretrainer, state_dict: Dict[str, Tensor], prefix: str, local_metadata: Mapping
) -> None:
    """state_dict() hook: `<prefix>encoder.X` -> `<prefix>X` (order kept)."""
    nested = prefix + ENCODER_PREFIX
    for key in [k for k in state_dict if k.startswith(prefix)]:
        value = state_dict.pop(key)
        state_dict[prefix + key[len(nested) :] if key.startswith(nested) else key] = value


def _nest_encoder_keys(
    module: MaskedPretrainer,
    state_dict: Dict[str, Tensor],
    prefix: str,
    local_metadata: Mapping,
    strict: bool,
    missing_keys: List[str],
    unexpected_keys: List[str],
    error_msgs: List[str],
) -> None:
    """load_state_dict() hook: flat encoder names `<prefix>X` -> `<prefix>encoder.X`."""
    own = {prefix + name for name in module.encoder.state_dict(keep_vars=True)}
    for key in [k for k in state_dict if k in own]:
        state_dict[prefix + ENCODER_PREFIX + key[len(prefix) :]] = state_dict.pop(key)
