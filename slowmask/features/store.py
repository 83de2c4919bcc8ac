"""Features on disk, one .npy per input so an interrupted run resumes where it stopped;
what made them, so that a run with other weights or another model never mixes its
features with theirs; and one writer at a time.

Layout of `out_dir`:
    pooled/<key>.npy   (D,) float32, the pooling store.json names ("pooling": the mean of the
                       encoder's grid tokens by default, see pooling.py)
    tokens/<key>.npy   (N, D) float32, every grid token as the pooling reads them (only when
                       per-token features are asked)
    features.npy       (num_done, D): the pooled rows of the list's inputs, in list order
    index.csv          "row,path": which input each row of features.npy is
    failed.txt         inputs that could not be read, with the reason
    store.json         what made the features (`Producer`): the checkpoint file (path, size,
                       mtime, SHA-256) and the settings that change them (config keys)
    run.lock           held while a run writes (slowmask.utils.output_files.RunLock)
"""

import csv
import hashlib
import json
import logging
import os
import shutil
import socket
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
from iopath.common.file_io import g_pathmgr

from slowmask.utils.output_files import LOCK_FILE, Holder, OutputDirInUse, OutputError, RunLock

logger = logging.getLogger(__name__)

POOLED, TOKENS = "pooled", "tokens"
MANIFEST = "store.json"
# What a run writes into the store (and `--overwrite` deletes); the log and the lock stay.
STORE_ENTRIES = (POOLED, TOKENS, "features.npy", "index.csv", "failed.txt", MANIFEST)
# Differences named in full by a refusal; the rest are counted.
_NAMED_DIFFERENCES = 3


def feature_key(path: str) -> str:
    """A file name for `path`'s features: its stem and a hash of the whole path (two
    inputs with one file name in different folders stay apart)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:10]}"


class FeatureStore:
    """Reads and writes the per-input features of `out_dir` (module docstring)."""

    def __init__(self, out_dir: str, per_token: bool = False) -> None:
        self.out_dir = out_dir
        self.per_token = per_token
        os.makedirs(os.path.join(out_dir, POOLED), exist_ok=True)
        if per_token:
            os.makedirs(os.path.join(out_dir, TOKENS), exist_ok=True)

    def _file(self, kind: str, path: str) -> str:
        return os.path.join(self.out_dir, kind, feature_key(path) + ".npy")

    def is_done(self, path: str) -> bool:
        kinds = (POOLED, TOKENS) if self.per_token else (POOLED,)
        return all(os.path.exists(self._file(kind, path)) for kind in kinds)

    def write(self, path: str, pooled: np.ndarray, tokens: np.ndarray = None) -> None:
        """Save (D,) pooled and, when per-token, (N, D) tokens; each file is renamed into
        place complete, the pooled one last (it marks the input done)."""
        if self.per_token:
            _save_atomic(self._file(TOKENS, path), tokens)
        _save_atomic(self._file(POOLED, path), pooled)

    def write_index(self, paths: Sequence[str], failed: Dict[str, str]) -> Tuple[int, List[str]]:
        """features.npy and index.csv over the done inputs of `paths` (list order), and
        failed.txt; returns the number of rows and the inputs with no features."""
        done = [p for p in paths if os.path.exists(self._file(POOLED, p))]
        rows = os.path.join(self.out_dir, "features.npy")
        if done:
            _save_atomic(rows, np.stack([np.load(self._file(POOLED, p)) for p in done]))
        elif os.path.exists(rows):  # an earlier index's rows: none of them is in this list
            os.remove(rows)
        with open(os.path.join(self.out_dir, "index.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "path"])
            writer.writerows(enumerate(done))
        with open(os.path.join(self.out_dir, "failed.txt"), "w") as f:
            f.writelines(f"{path}\t{reason}\n" for path, reason in failed.items())
        finished = set(done)
        return len(done), [p for p in paths if p not in finished]


# What made a store.


@dataclass(frozen=True)
class WeightsFile:
    """A checkpoint file as found: `sha256` of its bytes decides whether two are the same
    weights; path, size and mtime say which file it was."""

    path: str
    size: int
    mtime: float
    sha256: str

    @classmethod
    def of(cls, path: str) -> "WeightsFile":
        """The file at `path` (any iopath path; remote ones have no mtime: 0)."""
        digest, size = hashlib.sha256(), 0
        with g_pathmgr.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        if "://" in path:
            return cls(path, size, 0.0, digest.hexdigest())
        return cls(os.path.abspath(path), size, os.stat(path).st_mtime, digest.hexdigest())

    def describe(self) -> str:
        return f"{self.path} ({self.size:,} bytes, sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class Producer:
    """What made a store's features: the weights and `settings`, {name: value} of whatever
    else changes them (the model's config keys, the clip's frames, size and normalization)."""

    weights: WeightsFile
    settings: Dict[str, Any]

    def to_json(self) -> Dict[str, Any]:
        return {"weights": asdict(self.weights), "settings": _plain(self.settings)}

    @classmethod
    def from_json(cls, fields: Dict[str, Any]) -> "Producer":
        return cls(WeightsFile(**fields["weights"]), dict(fields["settings"]))

    def differences(self, other: "Producer") -> List[str]:
        """What differs from `other` (the earlier producer), one phrase per difference."""
        found = []
        if self.weights.sha256 != other.weights.sha256:
            found.append(f"the weights: {other.weights.describe()} then, {self.weights.describe()} now")
        now, then = _plain(self.settings), _plain(other.settings)
        for name in sorted(set(now) | set(then)):
            if now.get(name) != then.get(name):
                found.append(f"{name}: {then.get(name, '(unset)')!r} then, {now.get(name, '(unset)')!r} now")
        return found


def _plain(settings: Dict[str, Any]) -> Dict[str, Any]:
    """`settings` as JSON gives them back (tuples as lists), so that a read store compares equal."""
    return json.loads(json.dumps(settings, sort_keys=True))


class StoreOfOtherFeatures(OutputError):
    """The output folder holds features that another checkpoint or configuration made."""


def open_store(out_dir: str, producer: Producer, per_token: bool = False, overwrite: bool = False) -> FeatureStore:
    """The store in `out_dir` for features that `producer` makes: a new one; the one an
    earlier run of the same producer left (reused, with a warning naming it); or, with
    `overwrite`, a store emptied of whatever it held. `store.json` records the producer
    before any feature is written, so that an interrupted run is known too; a store with
    no features yet takes the new producer.

    Raises:
        StoreOfOtherFeatures: `out_dir` holds features of another producer, or of one it
            does not record (a store of an older slowmask), and `overwrite` is False.
    """
    done = _count_done(out_dir)
    if done and not overwrite:
        _check_same_producer(out_dir, producer, _read_producer(out_dir, done))
        logger.warning("reusing the features of %d input(s) in %s, made earlier by the same weights (%s) and "
                       "settings; --overwrite encodes them again", done, out_dir, producer.weights.describe())
        return FeatureStore(out_dir, per_token)
    if overwrite:
        _empty(out_dir)
    if done:
        logger.warning("--overwrite: deleted the features of %d input(s) in %s; encoding all again", done, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    _save_json_atomic(os.path.join(out_dir, MANIFEST), producer.to_json())
    return FeatureStore(out_dir, per_token)


def _check_same_producer(out_dir: str, producer: Producer, earlier: Producer) -> None:
    differences = producer.differences(earlier)
    if not differences:
        return
    named = "; ".join(differences[:_NAMED_DIFFERENCES])
    more = f"; and {len(differences) - _NAMED_DIFFERENCES} more" if len(differences) > _NAMED_DIFFERENCES else ""
    raise StoreOfOtherFeatures(
        f"{out_dir} holds features made otherwise ({named}{more}; see {os.path.join(out_dir, MANIFEST)}): give "
        "another --out, or pass --overwrite to delete them and start over"
    )


def _read_producer(out_dir: str, done: int) -> Producer:
    """The producer `store.json` records for the `done` features of `out_dir`."""
    path = os.path.join(out_dir, MANIFEST)
    try:
        with open(path) as f:
            return Producer.from_json(json.load(f))
    except FileNotFoundError:
        problem = f"no record of what made them ({MANIFEST} is missing)"
    except (ValueError, KeyError, TypeError) as error:
        problem = f"an unreadable record of what made them ({path}: {type(error).__name__}: {error})"
    raise StoreOfOtherFeatures(f"{out_dir} holds the features of {done} input(s) with {problem}: give another "
                               "--out, or pass --overwrite to delete them and start over")


def _count_done(out_dir: str) -> int:
    folder = os.path.join(out_dir, POOLED)
    return sum(name.endswith(".npy") for name in os.listdir(folder)) if os.path.isdir(folder) else 0


def _empty(out_dir: str) -> None:
    """Delete what a run wrote into the store (STORE_ENTRIES); other files stay."""
    for name in STORE_ENTRIES:
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


# One writer at a time.


@contextmanager
def hold_store(out_dir: str) -> Iterator[None]:
    """Hold the store's lock (out_dir/run.lock, a RunLock) for the body, so that a second
    run into the same folder is refused at once instead of losing rows of the first.

    Raises:
        OutputDirInUse: another run holds the lock; the message names it.
        OutputError: the folder cannot be made or written.
    """
    lock = RunLock(out_dir)
    try:
        lock.acquire()
    except OutputDirInUse as error:
        raise OutputDirInUse(_in_use(out_dir, error)) from None
    except OSError as error:
        raise OutputError(f"cannot write into {out_dir} ({type(error).__name__}: {error.strerror or error}): give "
                          "a folder this user can write") from error
    try:
        yield
    finally:
        lock.release()


def _in_use(out_dir: str, error: OutputDirInUse) -> str:
    path = os.path.join(out_dir, LOCK_FILE)
    try:
        with open(path) as f:
            holder = Holder.parse(f.read())
    except OSError:
        holder = None
    if holder is None or holder.host != socket.gethostname():
        return str(error)  # a holder this host cannot check: RunLock's advice stands
    return (f"{out_dir} is being written by another run ({holder.describe()}; lock file {path}): wait for it to "
            "end, or give this run another --out")


def _save_json_atomic(path: str, fields: Dict[str, Any]) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(fields, f, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _save_atomic(path: str, array: np.ndarray) -> None:
    temporary = f"{path}.tmp-{os.getpid()}.npy"
    np.save(temporary, np.asarray(array, dtype=np.float32))
    os.replace(temporary, path)
