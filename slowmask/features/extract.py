"""Extracting features of a list of inputs in batches, skipping those already on disk."""

import logging
from dataclasses import dataclass, field
from typing import Dict

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from .media import MediaClips, collate_media
from .pooling import DEFAULT_POOLING, pooled_features
from .store import FeatureStore

logger = logging.getLogger(__name__)


@dataclass
class ExtractReport:
    """`extracted` now, `skipped` (done by an earlier run), `failed` {path: reason},
    `rows` in features.npy."""

    extracted: int = 0
    skipped: int = 0
    failed: Dict[str, str] = field(default_factory=dict)
    rows: int = 0


def extract_features(
    model: nn.Module,
    dataset: MediaClips,
    store: FeatureStore,
    device: torch.device,
    batch_size: int = 8,
    num_workers: int = 0,
    pooling: str = DEFAULT_POOLING,
    last_k: int = 1,
) -> ExtractReport:
    """Write pooled (and, if the store asks, per-token) encoder features of every input of
    `dataset` not yet in `store`, read by `pooling` (pooling.py; `last_k` blocks for the
    "*_last_k" ones), then the store's index over all of them."""
    todo = [i for i, path in enumerate(dataset.paths) if not store.is_done(path)]
    report = ExtractReport(skipped=len(dataset) - len(todo))
    logger.info("%d inputs to encode, %d done earlier", len(todo), report.skipped)
    loader = DataLoader(Subset(dataset, todo), batch_size=batch_size, num_workers=num_workers, collate_fn=collate_media)
    model.to(device)
    for batch in loader:
        for path, reason in batch["failed"]:
            logger.warning("cannot read %s (%s)", path, reason)
            report.failed[path] = reason
        if batch["clip"] is None:
            continue
        features = pooled_features(model, batch["clip"].to(device), pooling, last_k)  # (B, D'), (B, N, D')
        for path, pooled, tokens in zip(batch["path"], features.pooled.cpu(), features.tokens.cpu()):
            store.write(path, pooled.numpy(), tokens.numpy())
        report.extracted += len(batch["path"])
    report.rows, _ = store.write_index(dataset.paths, report.failed)
    return report
