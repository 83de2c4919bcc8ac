"""Comparing float32 results that were computed in different orders of summation.

Two paths to the same number (SDPA or the plain product, one process or two, an expanded
kernel or a repeated frame) add the same terms in another order. Each sum is then off by
about eps * sqrt(terms) of the magnitude of its terms (float32 eps = 1.2e-7), whatever the
size of the element it lands in, and the order itself depends on the CPU's vector width and
the thread count. So the tolerance is a fraction of the largest magnitude involved, never
an absolute number and never a fraction of each element. For gradients that is the largest
gradient of the whole backward pass: some cancel to zero in exact arithmetic (the bias of
the keys, as a constant added to every key leaves the softmax unchanged), and what is left
of them is rounding at the scale of the pass, not of their own tiny values.
"""

from typing import Iterable, Tuple

import torch

# Float32 reordering leaves errors of a few 1e-7 of the scale at the sizes these tests use;
# 1e-5 leaves a margin of ten or more while still catching any wrong term.
REORDERED_SUM = 1e-5


def _largest(tensor: torch.Tensor) -> float:
    return float(tensor.detach().abs().max()) if tensor.numel() else 0.0


def assert_close_at_scale(actual: torch.Tensor, expected: torch.Tensor, rel: float = REORDERED_SUM,
                          msg: str = "", scale: float = None) -> None:
    """`actual` equals `expected` within `rel` times `scale`, by default the largest
    |expected| (so exactly, when `expected` is all zeros)."""
    scale = _largest(expected) if scale is None else scale
    tolerance = rel * scale

    def message(default: str) -> str:
        return f"{msg}{': ' if msg else ''}{default}\n(tolerance {rel:g} x scale {scale:.4g} = {tolerance:.3g})"

    torch.testing.assert_close(actual, expected, rtol=0, atol=tolerance, msg=message)


def assert_same_gradients(actual: Iterable[Tuple[str, torch.nn.Parameter]],
                          expected: Iterable[Tuple[str, torch.nn.Parameter]], rel: float = REORDERED_SUM) -> None:
    """Two modules' `named_parameters()` have the same `.grad` (both None, or equal within
    `rel` of the largest gradient of `expected`)."""
    actual, expected = list(actual), list(expected)
    assert [name for name, _ in actual] == [name for name, _ in expected]
    scale = max((_largest(p.grad) for _, p in expected if p.grad is not None), default=0.0)
    for (name, p), (_, q) in zip(actual, expected):
        assert (p.grad is None) == (q.grad is None), name
        if q.grad is not None:
            assert_close_at_scale(p.grad, q.grad, rel, msg=name, scale=scale)
