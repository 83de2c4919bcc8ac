"""Extracting features of a list of inputs in batches, skipping those already on disk."""

import logging
from dataclasses import dataclass, field
from typing import Dict

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from .encode import encoder_tokens
from .media import MediaClips, collate_media
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
) -> ExtractReport:
    """Write pooled (and, if the store asks, per-token) encoder features of every input of
    `dataset` not yet in `store`, then the store's index over all of them."""
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
        tokens = encoder_tokens(model, batch["clip"].to(device)).float().cpu()  # (B, N, D)
        for path, item_tokens in zip(batch["path"], tokens):
            store.write(path, item_tokens.mean(dim=0).numpy(), item_tokens.numpy())
        report.extracted += len(batch["path"])
    report.rows, _ = store.write_index(dataset.paths, report.failed)
    return report
