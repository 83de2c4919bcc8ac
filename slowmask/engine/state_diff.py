"""A short, readable difference between a checkpoint's state dict and a model's.

`load_state_dict` reports a mismatch as one line per key: hundreds of lines for a
checkpoint of another architecture (PySlowFast's model-zoo users know the wall of
text). Here keys are grouped by module, blocks.N collapsed into ranges, so the diff
reads like "missing: blocks.0-15.attn.rel_pos_{h,w,t} (48)".
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

import torch

Shape = Tuple[int, ...]
_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


@dataclass
class StateDiff:
    """Keys only the model has (`missing`), only the checkpoint has (`unexpected`), and
    keys both have with other shapes (`shape`: key -> (checkpoint shape, model shape))."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape: Dict[str, Tuple[Shape, Shape]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shape)

    def summary(self, max_lines: int = 12) -> str:
        """The diff in at most about 3 * `max_lines` lines, grouped by module."""
        parts = []
        groups = (("missing in the checkpoint", self.missing), ("unexpected in the checkpoint", self.unexpected))
        for title, keys in groups:
            if keys:
                parts.append(f"{title} ({len(keys)}):\n" + _grouped(keys, max_lines))
        if self.shape:
            parts.append(f"shape mismatch ({len(self.shape)}):\n" + self._shape_lines(max_lines))
        return "\n".join(parts) if parts else "no difference"


    def _shape_lines(self, max_lines: int) -> str:
        """Each key with both shapes when they are few; else the keys grouped by module
        and the first few as examples."""
        lines = [f"  {key}: checkpoint {list(c)} vs model {list(m)}" for key, (c, m) in sorted(self.shape.items())]
        if len(lines) <= max_lines:
            return "\n".join(lines)
        examples = max(1, max_lines // 4)
        return _grouped(list(self.shape), max_lines) + "\n  e.g.\n" + "\n".join(lines[:examples])


def state_diff(checkpoint_state: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> StateDiff:
    """Compare two state dicts (name -> tensor) by names and shapes."""
    diff = StateDiff(
        missing=sorted(k for k in model_state if k not in checkpoint_state),
        unexpected=sorted(k for k in checkpoint_state if k not in model_state),
    )
    for key in sorted(set(checkpoint_state) & set(model_state)):
        ckpt, model = tuple(checkpoint_state[key].shape), tuple(model_state[key].shape)
        if ckpt != model:
            diff.shape[key] = (ckpt, model)
    return diff


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    values = sorted(set(indices))
    spans: List[List[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _grouped(keys: Sequence[str], max_lines: int) -> str:
    """One line per module pattern: numeric indices collapsed into ranges, and the
    parameter names of one module joined, e.g. "blocks.0-15.attn.{rel_pos_h,rel_pos_w}"."""
    by_pattern: Dict[str, List[Tuple[int, ...]]] = defaultdict(list)
    for key in keys:
        by_pattern[_INDEX.sub(".#", key)].append(tuple(int(i) for i in _INDEX.findall(key)))
    by_module: Dict[str, List[str]] = defaultdict(list)
    for pattern, index_sets in by_pattern.items():
        columns = list(zip(*index_sets))
        filled = pattern
        for column in columns:
            filled = filled.replace("#", "{" + _ranges(column) + "}" if len(set(column)) > 1 else str(column[0]), 1)
        module, _, leaf = filled.rpartition(".")
        by_module[(module, len(index_sets))].append(leaf)
    lines = []
    for (module, count), leaves in sorted(by_module.items()):
        names = leaves[0] if len(leaves) == 1 else "{" + ",".join(sorted(leaves)) + "}"
        lines.append(f"  {module + '.' if module else ''}{names} ({count * len(leaves)})")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... and {len(lines) - max_lines} more modules"]
    return "\n".join(lines)
