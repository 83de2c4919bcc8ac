"""The MAE part of `tools/benchmark.py --what mae` (and of `tools/benchmark_mae.py`):
MAE's sparse encoder against the same model run densely with mask tokens.

One training step (forward, backward, AdamW update) of the MAE recipe, timed side by side
in one run: "sparse" encodes the visible tokens only (slowmask's MAE); "dense" runs every
token through the same encoder weights, the masked ones replaced by a mask token (the
MaskFeat / SimMIM way), then the same decoder, target and loss.
"""

from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

from slowmask.config import load_config
from slowmask.geometry import Grid, TokenGeometry
from slowmask.masking import build_mask_generator
from slowmask.masking.grids import upsample_mask
from slowmask.methods import MaskedPretrainer, build_model
from slowmask.models.mae import MAEEncoder

from .table import row
from .timing import Timing, compare, pretraining_step


class DenseMAEEncoder(nn.Module):
    """The weights of an MAEEncoder run densely: its patch embeddings of masked tokens
    are replaced by `mask_token_encoder` (1, 1, D), then the encoder runs with nothing
    masked, so every token goes through the blocks and the decoder's input is laid out
    as MAE's."""

    def __init__(self, sparse: MAEEncoder) -> None:
        super().__init__()
        self.sparse = sparse
        self.mask_token_encoder = nn.Parameter(torch.zeros(1, 1, sparse.embed_dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tuple[List[Tensor], List[Grid]]:
        """x (B, 3, T, H, W) and mask (B, t, h, w), True = masked: as MAEEncoder.forward."""

        def mask_tokens(_module: nn.Module, _inputs: tuple, output: Tuple[Tensor, Grid]) -> Tuple[Tensor, Grid]:
            tokens, grid = output  # (B, N, D) on the token grid
            masked = upsample_mask(mask, grid).flatten(1).unsqueeze(-1)
            return torch.where(masked, self.mask_token_encoder.to(tokens.dtype), tokens), grid

        handle = self.sparse.patch_embed.register_forward_hook(mask_tokens)
        try:
            return self.sparse(x, torch.zeros_like(mask))
        finally:
            handle.remove()


def _forward_backward(model: nn.Module, clips: Tensor, masks: Tensor) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        model(clips, masks)["loss"].backward()

    return run


def sparse_vs_dense(
    cfg_path: str = "configs/k400_ViT_B_MAE_PT.yaml",
    frames: int = 16,
    size: int = 224,
    batch: int = 2,
    ratio: float = 0.9,
    steps: int = 3,
    fused_adamw: bool = False,
) -> Dict[str, float]:
    """Median seconds of the sparse and the dense model (same weights, batch and masks; an
    AdamW each; one untimed warm-up step each, then `steps` timed steps in alternation):
    per whole step (`sparse_s`, `dense_s`, `speedup` = dense / sparse), per step in CPU
    time (`*_cpu_s`, `cpu_speedup`) and, timed in a second alternation without the
    update, per forward + backward (`*_fwd_bwd_s`, `fwd_bwd_speedup`); `tokens`, the
    number of tokens of a clip. `fused_adamw` uses torch's fused AdamW kernel (about 10x
    faster on CPU than the default for-loop AdamW the engine builds); the optimizer costs
    the same in both models, so it narrows the ratio of whole steps."""
    grid = TokenGeometry.from_config(load_config(cfg_path)).for_input((frames, size, size)).token_grid
    cfg = load_config(cfg_path, ["DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(size),
                                 "AUG.MASK_RATIO", str(ratio), "AUG.MASK_TYPE", "random",
                                 "AUG.MASK_WINDOW_SIZE", str(list(grid))])
    sparse = build_model(cfg)
    generator = build_mask_generator(cfg)
    masks = torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])
    clips = torch.randn(batch, 3, frames, size, size)
    dense = MaskedPretrainer(DenseMAEEncoder(sparse.encoder), sparse.pred_head, sparse.target, sparse.loss_fn)
    sparse_step, dense_step = (
        pretraining_step(model, torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused_adamw or None), clips, masks)
        for model in (sparse, dense)
    )
    timings: Dict[str, Timing] = dict(zip(("sparse", "dense"), compare(sparse_step, dense_step, 1, steps)))
    passes = compare(_forward_backward(sparse, clips, masks), _forward_backward(dense, clips, masks), 0, steps)
    result = {"tokens": float(grid[0] * grid[1] * grid[2])}
    for name, fwd_bwd in zip(("sparse", "dense"), passes):
        result[f"{name}_fwd_bwd_s"] = fwd_bwd.median
        result[f"{name}_s"] = timings[name].median
        result[f"{name}_cpu_s"] = timings[name].cpu_median
    result["speedup"] = result["dense_s"] / result["sparse_s"]
    result["cpu_speedup"] = result["dense_cpu_s"] / result["sparse_cpu_s"]
    result["fwd_bwd_speedup"] = result["dense_fwd_bwd_s"] / result["sparse_fwd_bwd_s"]
    return result


def mae_rows(cfg_path: str, frames: int, size: int, batch: int, repeats: int) -> List[dict]:
    """The MAE row: whole training steps of the sparse encoder against the dense one."""
    result = sparse_vs_dense(cfg_path, frames, size, batch, steps=repeats)
    sparse, dense = Timing([result["sparse_s"]]), Timing([result["dense_s"]])
    what = f"MAE train step, batch {batch}, {frames}x{size}x{size}, sparse encoder (medians of {repeats})"
    return [row("mae", what, sparse, "dense encoder with mask tokens", dense)]
