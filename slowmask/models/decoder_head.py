"""MAE's light decoder as a prediction head (PySlowFast's MSSeparateHead with
MASK.HEAD_TYPE "separate_xformer"): transformer blocks on the full token sequence
(visible latents and mask tokens), a LayerNorm, the class token dropped, then a linear
projection to each token's target. He et al. (2022, Sec. 3) keep it narrow and shallow
because it runs on every token, while the wide encoder runs on the visible ones only."""

from typing import List, Sequence

from torch import Tensor, nn

from .layers.attention import LayerNorm6
from .layers.block import BlockOptions, MultiScaleBlock, init_weights

# PySlowFast gives the decoder blocks one head per 64 channels.
DECODER_HEAD_DIM = 64


class DecoderPredictionHead(nn.Module):
    """[(B, [1+]N, dim_in)] -> [(B, N, dim_out)]: `transforms.0` = depth blocks + norm,
    `projections.0` = Linear (one entry, the single prediction depth of MAE).

    Args:
        dim_in: width of the decoder input (the decoder width).
        dim_out: width of the target (e.g. 768 pixels of a 16x16 RGB patch).
        depth: number of decoder blocks (MASK.DECODER_DEPTH).
        dim: decoder block width (MASK.DECODER_EMBED_DIM).
        has_cls_embed: the sequence starts with a class token, dropped before projecting.
        options: block options (mlp ratio, qkv bias, dropout); no pooling, no relative positions.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        *,
        depth: int,
        dim: int,
        has_cls_embed: bool = True,
        options: BlockOptions = BlockOptions(),
    ) -> None:
        super().__init__()
        if depth < 1 or dim % DECODER_HEAD_DIM:
            raise ValueError(
                f"the MAE decoder needs MASK.DECODER_DEPTH >= 1 and MASK.DECODER_EMBED_DIM a multiple of "
                f"{DECODER_HEAD_DIM}, got {depth} and {dim}"
            )
        self.num_prefix = 1 if has_cls_embed else 0
        blocks: List[nn.Module] = []
        for index in range(depth):
            width_in = dim_in if index == 0 else dim
            heads = dim // DECODER_HEAD_DIM
            blocks.append(MultiScaleBlock(width_in, dim, heads, (1, 1, 1), has_cls_embed=has_cls_embed, options=options))
        self.transforms = nn.ModuleList([nn.Sequential(*blocks, LayerNorm6(dim))])
        self.projections = nn.ModuleList([nn.Linear(dim, dim_out, bias=True)])
        self.apply(init_weights)

    def forward(self, features: Sequence[Tensor]) -> List[Tensor]:
        """[(B, [1+]N, dim_in)] -> [(B, N, dim_out)] for every token."""
        if len(features) != 1:
            raise ValueError(f"the decoder head takes one feature map, got {len(features)}")
        x = features[0]
        *blocks, norm = self.transforms[0]
        for block in blocks:
            # No pooling and no relative positions: the grid is only the sequence length.
            x, _ = block(x, (1, 1, x.shape[1] - self.num_prefix))
        x = norm(x)[:, self.num_prefix :]
        return [self.projections[0](x)]
