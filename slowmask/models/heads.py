"""Output heads: the classifier of MViT and the per-token prediction head of MaskFeat."""

from typing import Callable, List, Sequence

from torch import Tensor, nn

from .attention import LayerNorm6
from .block import init_weights


class TransformerBasicHead(nn.Module):
    """(B, dim_in) pooled features -> (B, num_classes) logits: [`bn`,] dropout, `projection`.

    Args:
        detach_final_fc: stop the gradient before the projection (MODEL.DETACH_FINAL_FC).
        input_norm: a BatchNorm without affine parameters (`bn`) first, as MAE's linear
            probe (He et al. 2022, appendix A.2): it rescales features whose magnitudes
            differ across pretraining methods, and is still a linear classifier.
    """

    def __init__(
        self,
        dim_in: int,
        num_classes: int,
        dropout_rate: float = 0.0,
        detach_final_fc: bool = False,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim_in, affine=False, eps=1e-6) if input_norm else None
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0.0 else nn.Identity()
        self.projection = nn.Linear(dim_in, num_classes, bias=True)
        self.detach_final_fc = detach_final_fc
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        if self.bn is not None:
            x = self.bn(x)
        x = self.dropout(x)
        if self.detach_final_fc:
            x = x.detach()
        return self.projection(x)


class SeparatePredictionHead(nn.Module):
    """MaskFeat's prediction head (PySlowFast's MSSeparateHead, MASK.HEAD_TYPE "separate"):
    for each pretraining depth a LayerNorm (`transforms.i.0`) and a Linear
    (`projections.i`) applied to every token.

    Args:
        dims_in: width of the features at each depth.
        dims_out: width of the target at each depth (e.g. 108 for HOG of 16x16 pixels).
    """

    def __init__(
        self,
        dims_in: Sequence[int],
        dims_out: Sequence[int],
        norm_layer: Callable[[int], nn.Module] = LayerNorm6,
    ) -> None:
        super().__init__()
        if len(dims_in) != len(dims_out):
            raise ValueError(f"one output width per input: got {list(dims_in)} and {list(dims_out)}")
        self.transforms = nn.ModuleList(nn.Sequential(norm_layer(d)) for d in dims_in)
        self.projections = nn.ModuleList(nn.Linear(d, o, bias=True) for d, o in zip(dims_in, dims_out))
        self.apply(init_weights)

    def forward(self, features: Sequence[Tensor]) -> List[Tensor]:
        """[(B, N_i, dims_in[i])] -> [(B, N_i, dims_out[i])]."""
        if len(features) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} feature maps, got {len(features)}")
        return [proj(transform(x)) for x, transform, proj in zip(features, self.transforms, self.projections)]
