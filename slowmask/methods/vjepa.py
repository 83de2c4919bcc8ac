"""V-JEPA / V-JEPA 2 (Bardes et al., 2024; Assran et al., 2025) and I-JEPA on images
(Assran et al., 2023): predict the masked regions' *latent* features, given by a moving
average of the encoder, with a narrow predictor; no pixels, no HOG.

- Masks: several mask sets per clip (V-JEPA 2: 8 blocks of spatial scale 0.15, and 2
  blocks of 0.7, over the whole clip in time; MASK.MULTIBLOCK_*), drawn in the forward
  pass on the token grid from torch's global generator (as VideoMAE V2's decoder mask:
  checkpoints save its state), one draw per clip and set; in eval mode from a generator
  seeded with 0, so validation losses compare across epochs. A set's blocks are the
  tokens to predict, the rest its context; per set every clip of the batch keeps the
  same numbers of context and predicted tokens, the lowest indices (as the reference's
  collator keeps them; JEPA.EVEN_COUNTS "random": a uniform draw of them, see
  masking.multiblock), so they batch without padding. The loader's mask is not used.
- The encoder (context encoder) sees each set's context tokens only (`models.jepa.
  JEPAEncoder`, a ViT ending in a LayerNorm).
- The predictor sees the context tokens carried to its width plus the set's mask token
  at each predicted position, with its own positions (`models.jepa.JEPAPredictor`).
- The target: the target encoder (an exponential moving average of the encoder, no
  gradient) on the whole clip, its output layer-normed again without affine parameters
  (V-JEPA's `F.layer_norm`), read at the predicted positions.
- The loss: the mean over the mask sets of mean |prediction - target|^p / p over their
  predicted tokens (p = JEPA.LOSS_EXP, 1.0).
- After an optimizer update: the target encoder moves towards the encoder with the
  momentum of the update's index (`models.ema`, JEPA.EMA start -> end over JEPA.EMA_STEPS
  updates; V-JEPA 2: 0.99925 throughout).

The state dict is MaskedPretrainer's: the encoder's names flat (`patch_embed.proj.*`,
`blocks.N.*`, `norm.*`, as vjepa2's), the predictor under `pred_head.`, and the target
encoder under `target.encoder.` (saved and resumed with the model).
"""

import copy
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from slowmask.geometry import TokenGeometry
from slowmask.masking import MaskGenerator
from slowmask.masking.multiblock import build_mask_sets, equal_count_indices, random_equal_count_indices
from slowmask.utils.errors import ConfigError
from slowmask.models import JEPAEncoder, JEPAPredictor, mvit_layout, trunk_args
from slowmask.models.ema import MomentumSchedule, ema_update_

from .build import METHOD_REGISTRY
from .pretrainer import MaskedPretrainer

logger = logging.getLogger(__name__)

# Seed of the masks drawn in eval mode (validation losses), apart from the global generator.
EVAL_MASK_SEED = 0

# JEPA.EVEN_COUNTS: which positions an item keeps when the batch's counts are evened out.
EVEN_COUNTS = ("first", "random")


class TargetEncoder(nn.Module):
    """The EMA copy of the encoder: `target(x)` -> (B, N, D) every token, layer-normed,
    without gradient. Its parameters never require gradient; `after_update` moves them."""

    state_in_checkpoint = True
    runs_under_autocast = True

    def __init__(self, encoder: JEPAEncoder) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder).requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        tokens = self.encoder.forward_features(x).float()
        return F.layer_norm(tokens, (tokens.shape[-1],))


@METHOD_REGISTRY.register(name="VJEPA")
class VJEPA(MaskedPretrainer):
    """model(x, mask) -> {"pred", "target", "loss"}: latent prediction of masked blocks.

    Args:
        encoder: the context encoder, `encoder(x, keep)` -> ((B, K, D), grid).
        predictor: `predictor(context, context_index, target_index, grid, mask_set)` -> (B, Kt, D).
        mask_sets: one generator per mask set, `generator(torch.Generator)` -> bool (t, h, w)
            on the token grid, True = to predict.
        ema: MomentumSchedule of the target encoder's momentum per optimizer update.
        loss_exp: p of the loss |pred - target|^p / p.
        even_counts: "first" (each item keeps its first context and predicted positions, as
            vjepa2's collator) or "random" (a uniform draw of them, with the masks' generator).
    """

    def __init__(
        self,
        encoder: JEPAEncoder,
        predictor: nn.Module,
        mask_sets: Sequence[MaskGenerator],
        ema: MomentumSchedule,
        loss_exp: float = 1.0,
        even_counts: str = "first",
    ) -> None:
        if not mask_sets:
            raise ValueError("V-JEPA needs at least one mask set")
        if loss_exp <= 0:
            raise ValueError(f"JEPA.LOSS_EXP must be positive, got {loss_exp}")
        if even_counts not in EVEN_COUNTS:
            raise ConfigError(f"unknown JEPA.EVEN_COUNTS {even_counts!r}: choose one of {', '.join(EVEN_COUNTS)}")
        super().__init__(encoder, predictor, TargetEncoder(encoder), self.latent_loss)
        self.mask_sets, self.ema, self.loss_exp = list(mask_sets), ema, loss_exp
        self.even_counts = even_counts

    def latent_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """mean |pred - target|^p / p over (rows, channels), float32."""
        return (pred.float() - target).abs().pow(self.loss_exp).mean() / self.loss_exp

    def draw_masks(self, batch: int, device: torch.device) -> List[Tuple[Tensor, Tensor]]:
        """Per mask set, (context_index (B, Kc), target_index (B, Kt)) on the token grid."""
        generator = torch.default_generator
        if not self.training:
            generator = torch.Generator().manual_seed(EVAL_MASK_SEED)
        drawn = []
        for mask_set in self.mask_sets:
            predicted = torch.stack([mask_set(generator) for _ in range(batch)])  # (B, t, h, w)
            if self.even_counts == "random":
                context_index, target_index = random_equal_count_indices(predicted, generator)
            else:
                context_index, target_index = equal_count_indices(predicted)
            drawn.append((context_index.to(device), target_index.to(device)))
        return drawn

    @torch.no_grad()
    def after_update(self, step_index: int) -> None:
        """The target encoder moves towards the encoder with momentum `ema(step_index)`."""
        ema_update_(self.target.encoder, self.encoder, self.ema(step_index))

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Dict[str, Any]:
        """Predict the target encoder's tokens of each mask set's blocks from its context.

        Args:
            x: (B, 3, T, H, W) normalized clip.
            mask: the loader's mask, not used (the mask sets are drawn here).
        Returns:
            "pred", "target": per mask set (B * Kt, D) rows, (batch, index) order;
            "loss": scalar, the mean over the sets; "mask_sets": the (context_index,
            target_index) pairs drawn.
        """
        drawn = self.draw_masks(x.shape[0], x.device)
        target_tokens = self.target(x)  # (B, N, D) float32, layer-normed
        preds, targets = [], []
        loss = x.new_zeros((), dtype=torch.float32)
        for set_index, (context_index, target_index) in enumerate(drawn):
            context, grid = self.encoder(x, context_index)
            pred = self.pred_head(context, context_index, target_index, grid, set_index)
            target = torch.gather(target_tokens, 1, target_index[..., None].expand(-1, -1, target_tokens.shape[-1]))
            loss = loss + self.loss_fn(pred, target) / len(drawn)
            preds.append(pred.flatten(0, 1))
            targets.append(target.flatten(0, 1))
        return {"pred": preds, "target": targets, "loss": loss, "mask_sets": drawn}

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "VJEPA":
        """The networks of `jepa_networks`, the mask sets MASK.MULTIBLOCK_* describe on the
        token grid, the JEPA.EMA schedule over JEPA.EMA_STEPS updates, JEPA.LOSS_EXP,
        JEPA.EVEN_COUNTS."""
        encoder, predictor = jepa_networks(cfg)
        grid = TokenGeometry.from_config(cfg).token_grid
        logger.warning(
            "V-JEPA draws its own mask sets (MASK.MULTIBLOCK_*) on the token grid %s in the model; the loader's "
            "mask (AUG.MASK_TYPE %r) is not used", grid, cfg.AUG.MASK_TYPE,
        )
        start, end = cfg.JEPA.EMA
        ema = MomentumSchedule(start, end, cfg.JEPA.EMA_STEPS)
        return cls(encoder, predictor, build_mask_sets(cfg, grid), ema, cfg.JEPA.LOSS_EXP, cfg.JEPA.EVEN_COUNTS)



def jepa_networks(cfg: CfgNode) -> Tuple[JEPAEncoder, JEPAPredictor]:
    """The encoder (MVIT.*, a ViT without class token) and the predictor (JEPA.PRED_*, the
    encoder's block options: rotary positions when MVIT.USE_ROPE, else a MVIT.SINCOS_LAYOUT
    table of its width)."""
    args = trunk_args(cfg)
    encoder = JEPAEncoder(**args)
    jepa = cfg.JEPA
    layout = mvit_layout(jepa.PRED_EMBED_DIM, jepa.PRED_NUM_HEADS, jepa.PRED_DEPTH, encoder.patch_grid,
                         drop_path_rate=cfg.MVIT.DROPPATH_RATE)
    predictor = JEPAPredictor(
        encoder.embed_dim, layout, grid=encoder.patch_grid, num_mask_tokens=jepa.PRED_NUM_MASK_TOKENS,
        options=args["options"], sincos_layout=cfg.MVIT.SINCOS_LAYOUT, act_checkpoint=args["act_checkpoint"],
    )
    return encoder, predictor


__all__: List[str] = ["TargetEncoder", "VJEPA", "jepa_networks"]
