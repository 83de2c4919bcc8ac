"""Tensor names told short: a list of state-dict keys grouped by module, block indices
collapsed into ranges ("blocks.0-15.attn.{q_bias,v_bias} (32)"), as the state diffs and
the conversion reports print them."""

import re
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

_INDEX = re.compile(r"\.(\d+)(?=\.|$)")


def index_ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    values = sorted(set(indices))
    spans: List[List[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def grouped_keys(keys: Sequence[str], max_lines: int) -> str:
    """One line per module pattern: numeric indices collapsed into ranges, and the
    parameter names of one module joined, e.g. "blocks.0-15.attn.{rel_pos_h,rel_pos_w}"."""
    by_pattern: Dict[str, List[Tuple[int, ...]]] = defaultdict(list)
    for key in keys:
        by_pattern[_INDEX.sub(".#", key)].append(tuple(int(i) for i in _INDEX.findall(key)))
    by_module: Dict[Tuple[str, int], List[str]] = defaultdict(list)
    for pattern, index_sets in by_pattern.items():
        columns = list(zip(*index_sets))
        filled = pattern
        for column in columns:
            spans = "{" + index_ranges(column) + "}" if len(set(column)) > 1 else str(column[0])
            filled = filled.replace("#", spans, 1)
        module, _, leaf = filled.rpartition(".")
        by_module[(module, len(index_sets))].append(leaf)
    lines = []
    for (module, count), leaves in sorted(by_module.items()):
        names = leaves[0] if len(leaves) == 1 else "{" + ",".join(sorted(leaves)) + "}"
        lines.append(f"  {module + '.' if module else ''}{names} ({count * len(leaves)})")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... and {len(lines) - max_lines} more modules"]
    return "\n".join(lines)
