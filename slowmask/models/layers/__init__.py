"""The parts every architecture of slowmask.models is built from: multi-scale attention
(attention.py) with its pooling (pooling.py) and relative positions
(relative_position.py), the transformer block (block.py), the patch embedding
(patch_embed.py), absolute position tables (position.py), and the per-block layout of
widths, heads and strides (layout.py). They take plain arguments and know no method.
"""

from .attention import MultiScaleAttention
from .block import BlockOptions, MultiScaleBlock
from .layout import BlockLayout, mvit_layout

__all__ = ["BlockLayout", "BlockOptions", "MultiScaleAttention", "MultiScaleBlock", "mvit_layout"]
