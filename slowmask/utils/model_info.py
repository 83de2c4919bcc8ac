"""Model size: parameters, GFLOPs (fvcore) and the token grid of every MViT stage.

FLOPs are counted as fvcore counts them (one multiply-add = one flop), the convention
of PySlowFast's and the papers' GFLOPs figures. Attention is counted on its explicit
matmul-softmax-matmul path with the decomposed relative-position einsums, which is what
PySlowFast computes; the fused `scaled_dot_product_attention` path computes the same
function but is opaque to fvcore.
"""

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

import torch
from torch import nn

from slowmask.geometry import Grid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """Consecutive blocks with the same output token grid, with their width and heads."""

    first_block: int
    last_block: int
    dim: int
    num_heads: int
    grid: Grid

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid
        return t * h * w


def significant(value: float, digits: int = 3) -> str:
    """`value` with `digits` significant digits in plain notation: 71.4, 0.00598, 1235 (a
    tiny model's GFLOPs are not 0.0, a large one's not 1.24e+03)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, inputs: Tuple[Any, ...]) -> int:
    """fvcore's flop count of `model(*inputs)` (multiply-adds), on the explicit
    attention path; the model's attention modules are restored afterwards."""
    switched = [m for m in model.modules() if getattr(m, "use_sdpa", False)]
    for module in switched:
        module.use_sdpa = False
    try:
        # fvcore scripts a loss at import and counts on a jit trace: torch's deprecation
        # notices and the trace's shape warnings are about fvcore, nothing a user can change.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, inputs)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            with torch.no_grad():
                total = analysis.total()
    finally:
        for module in switched:
            module.use_sdpa = True
    return int(total)


def mvit_stages(dims: Sequence[int], heads: Sequence[int], grids: Sequence[Grid]) -> List[Stage]:
    """Group blocks into stages: runs of blocks with the same output token grid (a stage
    starts where the queries are pooled). `dims` and `heads` are each block's input width
    and heads; a stage reports those of its last block (MViTv2 widens inside the block
    before the next pooling, DIM_MUL_IN_ATT, so the last block's input is the stage's width)."""
    stages: List[Stage] = []
    for index, (dim, num_heads, grid) in enumerate(zip(dims, heads, grids)):
        if stages and stages[-1].grid == tuple(grid):
            stages[-1] = Stage(stages[-1].first_block, index, dim, num_heads, stages[-1].grid)
        else:
            stages.append(Stage(index, index, dim, num_heads, tuple(grid)))
    return stages


def stage_lines(patch_grid: Grid, patch_dim: int, stages: Sequence[Stage]) -> List[str]:
    """A small table: the patch embedding's grid, then one line per stage."""
    t, h, w = patch_grid
    lines = [f"{'stage':<8}{'blocks':<10}{'dim':>6}{'heads':>7}  token grid (t x h x w = tokens)"]
    lines.append(f"{'patch':<8}{'':<10}{patch_dim:>6}{'':>7}  {t} x {h} x {w} = {t * h * w}")
    for number, stage in enumerate(stages, start=1):
        blocks = f"{stage.first_block}-{stage.last_block}"
        t, h, w = stage.grid
        lines.append(f"{number:<8}{blocks:<10}{stage.dim:>6}{stage.num_heads:>7}  {t} x {h} x {w} = {stage.num_tokens}")
    return lines
