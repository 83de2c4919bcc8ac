"""Load a configuration: defaults, then a yaml file (with `_BASE_`), then `KEY VALUE`
overrides, each validated before it is merged, then the geometry checks; frozen.

Every problem is reported before any work starts, all of them at once, naming the key
and what would be valid: unknown keys come with the closest known key (and the file that
sets them), wrong types with the expected one. A file that cannot be read as a mapping of
keys (missing, a folder, a YAML syntax error, a list at the top, a `_BASE_` loop) is one
line naming the file and, for a syntax error, the line. Only regular files of at most
MAX_CONFIG_BYTES are read: a device (/dev/zero), a FIFO or a huge file is refused before
a byte is read, instead of filling the memory or blocking. PySlowFast's keys of features slowmask does not build are accepted; a
run lists the ones a file sets in one log line once its logging is set up (see
unused_keys.py).
"""

import difflib
import os
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml
from fvcore.common.config import BASE_KEY, CfgNode
from iopath.common.file_io import g_pathmgr

from slowmask.utils.custom_modules import import_custom_modules
from slowmask.utils.errors import ConfigError

from .checks import check_config
from .defaults import get_defaults

# The largest config file read. The shipped ones are under 10 KB; YAML parses some
# 100 KB a second, so a bigger file is a mistake that would take minutes (a list of
# millions of values) or never end (/dev/zero), not a config.
MAX_CONFIG_BYTES = 1 << 20


def load_config(path: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """Defaults <- yaml file at `path` <- `opts` ([KEY, VALUE, ...]); checked and frozen.
    Then the modules of DATA.CUSTOM_MODULES are imported, so that the parts they register
    are there before anything is built. Raises one ConfigError listing every problem
    found, or CustomModuleError for an entry that cannot be imported."""
    cfg = get_defaults()
    problems: List[str] = []
    for merge, source in ((merge_file, path), (merge_list, opts)):
        if source:
            try:
                merge(cfg, source)
            except ConfigError as error:
                problems += error.problems
    if problems:  # the merged config is incomplete: its checks would report false problems
        raise ConfigError.of_all(problems)
    check_config(cfg)
    cfg.freeze()
    import_custom_modules(cfg.DATA.CUSTOM_MODULES)
    return cfg


def merge_file(cfg: CfgNode, path: str) -> None:
    """Merge a yaml file (and its `_BASE_` files) into `cfg`, validating every key; each
    problem names the file that sets the key."""
    chain = read_yaml_chain(path)
    problems: List[str] = []
    tree: Dict[str, Any] = {}
    for file, own in chain:
        _merge_into(tree, _validated(own, cfg, "", file, problems))
    if problems:
        raise ConfigError.of_all(problems)
    modules = tree.get("DATA", {}).get("CUSTOM_MODULES")
    if modules:
        tree["DATA"]["CUSTOM_MODULES"] = _files_relative_to(_file_setting(chain, "DATA", "CUSTOM_MODULES"), modules)
    cfg.merge_from_other_cfg(CfgNode(tree))


def read_yaml_chain(path: str, parents: Sequence[str] = ()) -> List[Tuple[str, Dict[str, Any]]]:
    """[(file, its own settings without _BASE_)] of `path` and the files its `_BASE_`
    names (a file or a list of files, relative to the naming file, as fvcore reads it),
    bases first: merged in this order, the later file wins. `parents` are the files that
    led here, to name a loop.

    Raises:
        ConfigError: one line naming the file (and the line) that cannot be read: missing,
            a folder, not YAML, not a mapping of keys, or a _BASE_ that leads back to itself.
    """
    here = path if "://" in path else os.path.normpath(os.path.abspath(path))
    if here in parents:
        loop = " -> ".join([*parents[list(parents).index(here):], here])
        raise ConfigError(f"_BASE_ files form a loop: {loop}; remove the _BASE_ that leads back")
    own = _read_yaml_mapping(path, parents[-1] if parents else None)
    bases = own.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(base, str) for base in bases):
        raise ConfigError(f"{path}: _BASE_ must be a file name or a list of them, got {bases!r}")
    chain: List[Tuple[str, Dict[str, Any]]] = []
    for base in bases:
        chain += read_yaml_chain(_base_path(path, base), (*parents, here))
    return [*chain, (path, own)]


def _base_path(path: str, base: str) -> str:
    base = os.path.expanduser(base)
    if base.startswith(("/", "https://", "http://")):
        return base
    return os.path.join(os.path.dirname(path), base)


def _read_yaml_mapping(path: str, named_by: Optional[str]) -> Dict[str, Any]:
    """The top-level mapping of the yaml file `path` (empty for an empty file), loaded
    safely: a tag that would build a Python object is an error, never run."""
    kind, named = ("_BASE_ file", f" (named by {named_by})") if named_by else ("config file", "")
    if not g_pathmgr.exists(path):
        raise ConfigError(f"{kind} not found: {path}{named}")
    if g_pathmgr.isdir(path):
        found = sorted(name for name in g_pathmgr.ls(path) if name.endswith((".yaml", ".yml")))
        hint = f", e.g. {os.path.join(path, found[0])}" if found else ""
        raise ConfigError(f"{kind} {path}{named} is a folder; give the path of a .yaml file{hint}")
    try:
        raw = _read_bounded(path, f"{kind} {path}{named}")
        loaded = yaml.safe_load(raw)
    except OSError as error:
        raise ConfigError(f"{kind} {path}{named} cannot be read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}{_yaml_problem(error, raw)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: the top level must map sections to their keys (a line 'DATA:' and under it "
            f"'  NUM_FRAMES: 16'), got a {type(loaded).__name__}"
        )
    return loaded


def _read_bounded(path: str, what: str) -> bytes:
    """The bytes of the regular file `path`, refused unread when it is a device, a FIFO or
    a socket (reading it would never end or block), or larger than MAX_CONFIG_BYTES."""
    limit = f"the {MAX_CONFIG_BYTES >> 20} MiB ({MAX_CONFIG_BYTES:,} bytes) a config file may have"
    if "://" not in path:
        mode = os.stat(path)
        if not stat.S_ISREG(mode.st_mode):
            raise ConfigError(f"{what} is not a regular file (a device, FIFO or socket); give the path of a .yaml file")
        if mode.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{what} has {mode.st_size:,} bytes, more than {limit}; "
                              "give the path of a .yaml file of settings")
    with g_pathmgr.open(path, "rb") as f:
        raw = f.read(MAX_CONFIG_BYTES + 1)  # a remote file, or one that grew since stat
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} has more than {limit}; give the path of a .yaml file of settings")
    return raw


def _yaml_problem(error: yaml.YAMLError, raw: bytes) -> str:
    """", line L, column C: what is wrong" for one YAML error."""
    if isinstance(error, yaml.reader.ReaderError):
        line = raw.count(b"\n", 0, error.position) + 1
        return f", line {line}: not UTF-8 text ({error.reason}); save it as UTF-8"
    mark = getattr(error, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if isinstance(error, yaml.constructor.ConstructorError):
        return f"{where}: {problem}; tags that build Python objects are refused, write plain values"
    return f"{where}: YAML syntax error: {problem}"


def _merge_into(base: Dict[str, Any], derived: Dict[str, Any]) -> None:
    """Merge `derived` into `base`, section by section; the derived value wins."""
    for key, value in derived.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value


def _file_setting(chain: Sequence[Tuple[str, Dict[str, Any]]], section: str, key: str) -> str:
    """The file of a _BASE_ chain whose value of section.key is used (the last that sets it)."""
    return next(file for file, own in reversed(chain) if key in (own.get(section) or {}))


def _files_relative_to(yaml_path: str, entries: Sequence[str]) -> List[str]:
    """DATA.CUSTOM_MODULES entries with relative .py paths made relative to the yaml
    that names them (as _BASE_ is), so a project's config runs from any directory;
    module names stay as they are."""
    folder = os.path.dirname(os.path.abspath(yaml_path))
    return [
        os.path.normpath(os.path.join(folder, entry)) if entry.endswith(".py") and not os.path.isabs(entry) else entry
        for entry in entries
    ]


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
    problems: List[str] = []
    validated = _validated(tree, cfg, "", "command line", problems)
    if problems:
        raise ConfigError.of_all(problems)
    cfg.merge_from_other_cfg(CfgNode(validated))


def _validated(tree: Dict[str, Any], node: CfgNode, prefix: str, source: str, problems: List[str]) -> Dict[str, Any]:
    """A copy of `tree` with values decoded and coerced to the defaults' types, without
    the keys that are unknown or of a wrong type; those are added to `problems`."""
    out = {}
    for key, value in tree.items():
        full_key = prefix + key
        if key not in node:
            problems.append(_unknown_key_message(full_key, source))
            continue
        default = node[key]
        if isinstance(default, CfgNode):
            if isinstance(value, dict):
                out[key] = _validated(value, default, full_key + ".", source, problems)
            else:
                problems.append(f"{full_key} ({source}) is a section of keys, got the value {value!r}")
            continue
        try:
            out[key] = _coerced(full_key, CfgNode._decode_cfg_value(value), default, source)
        except ConfigError as error:
            problems.append(str(error))
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


def changed_keys(cfg: CfgNode, reference: Optional[CfgNode] = None) -> Dict[str, Any]:
    """{full key: value} of every key whose value in `cfg` differs from `reference`
    (the defaults when None): what the yaml files and the command line set."""
    reference = get_defaults() if reference is None else reference
    changed = {}
    for key in _all_keys(cfg):
        value, before = cfg, reference
        for part in key.split("."):
            value = value[part]
            before = before.get(part) if isinstance(before, CfgNode) else None
        if value != before:
            changed[key] = value
    return changed


def write_config(cfg: CfgNode, path: str) -> None:
    """The whole config as yaml at `path`, replaced whole (never half-written)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with g_pathmgr.open(temporary, "w") as f:
        f.write(cfg.dump())
    os.replace(temporary, path)


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
