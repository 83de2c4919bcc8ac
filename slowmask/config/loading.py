"""Load a configuration: defaults, then a yaml file (with `_BASE_`), then `KEY VALUE`
overrides, each validated before it is merged, then the geometry checks; frozen.

Every problem is reported before any work starts, naming the key and what would be
valid: unknown keys come with the closest known key, wrong types with the expected one.
PySlowFast's keys of features slowmask does not build are accepted; a run lists the
ones a file sets in one log line once its logging is set up (see unused_keys.py).
"""

import difflib
from typing import Any, Dict, List, Optional, Sequence

from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr

from .defaults import get_defaults


class ConfigError(ValueError):
    """A configuration that cannot run, with a message that says why."""


def load_config(path: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """Defaults <- yaml file at `path` <- `opts` ([KEY, VALUE, ...]); checked and frozen."""
    from .checks import check_config

    cfg = get_defaults()
    if path:
        merge_file(cfg, path)
    merge_list(cfg, opts)
    check_config(cfg)
    cfg.freeze()
    return cfg


def merge_file(cfg: CfgNode, path: str) -> None:
    """Merge a yaml file (and its `_BASE_` files) into `cfg`, validating every key."""
    if not g_pathmgr.exists(path):
        raise ConfigError(f"config file not found: {path}")
    loaded = CfgNode.load_yaml_with_base(path, allow_unsafe=False)
    tree = _validated(loaded or {}, cfg, prefix="", source=path)
    cfg.merge_from_other_cfg(CfgNode(tree))


def merge_list(cfg: CfgNode, opts: Sequence[str]) -> None:
    """Merge command-line overrides [KEY, VALUE, KEY, VALUE, ...] into `cfg`."""
    if len(opts) % 2:
        raise ConfigError(
            f"overrides come in KEY VALUE pairs; got an odd number of items: {list(opts)}"
        )
    tree: Dict[str, Any] = {}
    for key, value in zip(opts[0::2], opts[1::2]):
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    cfg.merge_from_other_cfg(CfgNode(_validated(tree, cfg, prefix="", source="command line")))


def _validated(tree: Dict[str, Any], node: CfgNode, prefix: str, source: str) -> Dict[str, Any]:
    """A copy of `tree` with values decoded and coerced to the defaults' types;
    raises ConfigError on the first unknown key or wrong type."""
    out = {}
    for key, value in tree.items():
        full_key = prefix + key
        if key not in node:
            raise ConfigError(_unknown_key_message(full_key, source))
        default = node[key]
        if isinstance(default, CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{full_key} ({source}) is a section of keys, got the value {value!r}"
                )
            out[key] = _validated(value, default, full_key + ".", source)
        else:
            out[key] = _coerced(full_key, CfgNode._decode_cfg_value(value), default, source)
    return out


def _coerced(full_key: str, value: Any, default: Any, source: str) -> Any:
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(
        f"{full_key} ({source}) expects {type(default).__name__} like {default!r}, "
        f"got {type(value).__name__} {value!r}"
    )


def _all_keys(node: CfgNode, prefix: str = "") -> List[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, CfgNode):
            keys.extend(_all_keys(value, prefix + key + "."))
        else:
            keys.append(prefix + key)
    return keys


def _unknown_key_message(full_key: str, source: str) -> str:
    known = _all_keys(get_defaults())
    leaf = full_key.rsplit(".", 1)[-1]
    same_leaf = [k for k in known if k.rsplit(".", 1)[-1] == leaf]
    close = same_leaf or difflib.get_close_matches(full_key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown config key {full_key} ({source}){hint}"
