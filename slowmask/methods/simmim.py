"""SimMIM (Xie et al., CVPR 2022): MaskFeat's composition regressing raw pixels.

- The encoder sees every token, the masked ones replaced by a learned mask token, as
  MaskFeat's (`models.mvit.MaskFeatEncoder`); SimMIM's recipes mask coarse units
  (32x32 pixels over 16x16 patches: AUG.MASK_WINDOW_SIZE).
- No decoder: the linear head (`SeparatePredictionHead`) maps each token to its pixels
  (Sec. 3.3: a one-layer head is enough).
- The target: the pixels of each masked token's patch (targets/pixel.py, MASK.TARGET
  "pixel", raw with MASK.NORM_PRED_PIXEL False).
- The loss: MODEL.LOSS_FUNC, "l1" in SimMIM's recipes (Sec. 3.4), on the masked tokens.
- After an optimizer update: nothing.

What differs from MaskFeat is only the target and the loss the config names; the method
has its own name so that a config, a log and a reader see which one runs. PySlowFast
builds it as "MaskMViT" with MASK.PRED_HOG False.
"""

from fvcore.common.config import CfgNode

from slowmask import targets
from slowmask.models import build_loss

from .build import METHOD_REGISTRY
from .maskfeat import MaskFeat, dense_parts

# The target SimMIM regresses.
PIXEL_TARGET = "pixel"


@METHOD_REGISTRY.register(name="SimMIM")
class SimMIM(MaskFeat):
    """MaskFeat's parts with the "pixel" target."""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "SimMIM":
        """The pixel target (MASK.NORM_PRED_PIXEL, MASK.TIME_STRIDE_LOSS) and MODEL.LOSS_FUNC."""
        name = targets.target_name(cfg)
        if name != PIXEL_TARGET:
            raise ValueError(
                f"SimMIM regresses pixels, but MASK.TARGET is {name!r}: set MASK.TARGET \"pixel\", "
                'or MODEL.MODEL_NAME "MaskFeat" for another target'
            )
        encoder, head, target = dense_parts(cfg, targets.build_target)
        return cls(encoder, head, target, build_loss(cfg.MODEL.LOSS_FUNC), cfg.MASK.LOSS_TOKENS)
