"""Features on disk, one .npy per input so an interrupted run resumes where it stopped.

Layout of `out_dir`:
    pooled/<key>.npy   (D,) float32, the mean of the encoder's grid tokens
    tokens/<key>.npy   (N, D) float32, every grid token (only when per-token features are asked)
    features.npy       (num_done, D): the pooled rows of the list's inputs, in list order
    index.csv          "row,path": which input each row of features.npy is
    failed.txt         inputs that could not be read, with the reason
"""

import csv
import hashlib
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

POOLED, TOKENS = "pooled", "tokens"


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
        if done:
            _save_atomic(os.path.join(self.out_dir, "features.npy"), np.stack([np.load(self._file(POOLED, p)) for p in done]))
        with open(os.path.join(self.out_dir, "index.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "path"])
            writer.writerows(enumerate(done))
        with open(os.path.join(self.out_dir, "failed.txt"), "w") as f:
            f.writelines(f"{path}\t{reason}\n" for path, reason in failed.items())
        finished = set(done)
        return len(done), [p for p in paths if p not in finished]


def _save_atomic(path: str, array: np.ndarray) -> None:
    temporary = f"{path}.tmp-{os.getpid()}.npy"
    np.save(temporary, np.asarray(array, dtype=np.float32))
    os.replace(temporary, path)
