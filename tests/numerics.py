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

from typing import Iterable, Mapping, Tuple

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


def assert_same_tensors(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                        rel: float = REORDERED_SUM) -> None:
    """Two {name: tensor} tables (a model's weights, its gradients) are equal within `rel`
    of the largest magnitude in all of `expected`: a weight whose gradient cancels to
    zero stays at rounding noise of the whole model's scale."""
    assert actual.keys() == expected.keys()
    scale = max((_largest(tensor) for tensor in expected.values()), default=0.0)
    for name, tensor in expected.items():
        assert_close_at_scale(actual[name], tensor, rel, msg=name, scale=scale)


def assert_same_gradients(actual: Iterable[Tuple[str, torch.nn.Parameter]],
                          expected: Iterable[Tuple[str, torch.nn.Parameter]], rel: float = REORDERED_SUM) -> None:
    """Two modules' `named_parameters()` have the same `.grad` (both None, or equal as
    in assert_same_tensors)."""
    actual, expected = dict(actual), dict(expected)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert (actual[name].grad is None) == (expected[name].grad is None), name
    assert_same_tensors({name: p.grad for name, p in actual.items() if p.grad is not None},
                        {name: p.grad for name, p in expected.items() if p.grad is not None}, rel)
