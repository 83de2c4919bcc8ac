"""V-JEPA's training step against MaskFeat's at equal input (`tools/benchmark.py --what vjepa`).

Both are ViT-B/16 (768 wide, 12 blocks, 12 heads) on the same clips: MaskFeat
(configs/k400_ViT_B_MaskFeat_PT.yaml) runs every token through the encoder and predicts
HOG; V-JEPA (configs/k400_ViT_L_VJEPA2_PT.yaml with a ViT-B encoder) runs the encoder once
per mask set on that set's context, the EMA target encoder on every token without
gradient, and its 12-block predictor once per set. One step each (forward, backward,
AdamW; V-JEPA's EMA update after it), timed in alternation.
"""

from typing import Callable, List, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from torch import nn

from slowmask.config import load_config
from slowmask.geometry import TokenGeometry
from slowmask.methods import build_model

from .step import step_cfg
from .table import row
from .timing import compare, pretraining_step

MASKFEAT_VIT_B = "configs/k400_ViT_B_MaskFeat_PT.yaml"
VJEPA_RECIPE = "configs/k400_ViT_L_VJEPA2_PT.yaml"
# The V-JEPA 2 recipe with MaskFeat's ViT-B encoder, on one process.
VIT_B = ["MVIT.EMBED_DIM", "768", "MVIT.NUM_HEADS", "12", "MVIT.DEPTH", "12", "MASK.PRETRAIN_DEPTH", "[11]",
         "MODEL.ACT_CHECKPOINT", "False", "NUM_GPUS", "0", "NUM_SHARDS", "1", "TRAIN.BATCH_SIZE", "2",
         "TEST.BATCH_SIZE", "2"]


def vjepa_cfg(frames: int, size: int, opts: Sequence[str] = ()) -> CfgNode:
    """V-JEPA 2's recipe with a ViT-B encoder at a (frames, size) clip, `opts` last."""
    grid = TokenGeometry.from_config(load_config(VJEPA_RECIPE, VIT_B)).for_input((frames, size, size)).token_grid
    return load_config(VJEPA_RECIPE, [*VIT_B, "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(size),
                                      "AUG.MASK_WINDOW_SIZE", str(list(grid)), *opts])


def vjepa_step(cfg: CfgNode, batch: int) -> Tuple[nn.Module, Callable[[], None]]:
    """(model, step) of the V-JEPA config: forward, backward, AdamW, EMA update, the same
    mask sets every call."""
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    clips = torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    update = pretraining_step(model, optimizer, clips, None)

    def step() -> None:
        torch.manual_seed(0)  # the same mask sets every repeat: the same work
        update()
        model.after_update(0)

    return model, step


def vjepa_rows(frames: int, size: int, batch: int, warmup: int, repeats: int, opts: Sequence[str] = ()) -> List[dict]:
    """The V-JEPA row: its ViT-B step against MaskFeat's ViT-B step, same clips (`opts`
    applied to both configs)."""
    _, jepa = vjepa_step(vjepa_cfg(frames, size, opts), batch)
    cfg = step_cfg(MASKFEAT_VIT_B, list(opts), frames, size)
    torch.manual_seed(cfg.RNG_SEED)
    maskfeat = build_model(cfg)
    generator = torch.Generator().manual_seed(0)
    clips = torch.randn(batch, 3, frames, size, size, generator=generator)
    masks = torch.rand(batch, *cfg.AUG.MASK_WINDOW_SIZE, generator=generator) < cfg.AUG.MASK_RATIO
    maskfeat_step = pretraining_step(maskfeat, torch.optim.AdamW(maskfeat.parameters(), lr=1e-4), clips, masks)
    fast, slow = compare(jepa, maskfeat_step, warmup, repeats)
    what = f"V-JEPA 2 ViT-B train step (2 mask sets, EMA target, 12-block predictor), batch {batch}, {frames}x{size}x{size}"
    return [row("vjepa", what, fast, "MaskFeat ViT-B train step (HOG), same clips", slow)]
