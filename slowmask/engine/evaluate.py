"""Evaluating a classifier: scores of every view, their ensemble per video, accuracies.

Multi-view testing (PySlowFast's): a test dataset yields each video as
TEST.NUM_ENSEMBLE_VIEWS temporal clips x TEST.NUM_SPATIAL_CROPS crops; the
classifier's probabilities of a video's views are averaged ("sum") or maxed ("max"),
and top-1 / top-5 / per-class accuracy are computed on the per-video scores.
Validation during training is the same with one view per video.
"""

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List

import torch
from torch import Tensor, nn

from .step import check_labels

logger = logging.getLogger(__name__)

# MODEL.HEAD_ACT: logits (N, K) -> scores (N, K).
HEAD_ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "softmax": lambda logits: logits.softmax(dim=1),
    "sigmoid": torch.sigmoid,
    "none": lambda logits: logits,
}
# DATA.ENSEMBLE_METHOD: (views, K) scores of one video -> (K,).
ENSEMBLES: Dict[str, Callable[[Tensor], Tensor]] = {
    "sum": lambda scores: scores.mean(dim=0),
    "max": lambda scores: scores.max(dim=0).values,
}


@dataclass
class ViewScores:
    """Scores of every view: scores (N, K) float32, labels (N,), video (N,) video index,
    paths (one per video index seen)."""

    scores: Tensor
    labels: Tensor
    video: Tensor
    paths: Dict[int, str]


@torch.no_grad()
def predict_views(
    model: nn.Module,
    loader: Iterable[Dict[str, Any]],
    device: torch.device,
    num_classes: int,
    head_act: str = "softmax",
) -> ViewScores:
    """Run `model` (eval mode) on every batch of `loader` (items with "clip", "label",
    "meta" holding "video_index" and "path") and collect the activated scores."""
    activation = HEAD_ACTIVATIONS[head_act]
    was_training = model.training
    model.eval()
    scores: List[Tensor] = []
    labels: List[Tensor] = []
    videos: List[int] = []
    paths: Dict[int, str] = {}
    try:
        for batch in loader:
            check_labels(batch["label"], num_classes)
            clip = batch["clip"].to(device, non_blocking=True)
            scores.append(activation(model(clip).float()).cpu())
            labels.append(batch["label"])
            for meta in batch["meta"]:
                videos.append(int(meta["video_index"]))
                paths[int(meta["video_index"])] = meta["path"]
    finally:
        model.train(was_training)
    if not scores:
        raise ValueError("the evaluation split has no videos")
    return ViewScores(torch.cat(scores), torch.cat(labels), torch.as_tensor(videos), paths)


def ensemble_views(views: ViewScores, method: str = "sum") -> ViewScores:
    """One row per video (in video-index order): its views' scores combined by `method`.

    Raises:
        ValueError: the videos did not all get the same number of views.
    """
    order = torch.unique(views.video)
    counts = torch.bincount(views.video)[order]
    if counts.min() != counts.max():
        raise ValueError(f"videos got different numbers of views ({int(counts.min())} to {int(counts.max())})")
    combine = ENSEMBLES[method]
    scores = torch.stack([combine(views.scores[views.video == v]) for v in order.tolist()])
    labels = torch.stack([views.labels[views.video == v][0] for v in order.tolist()])
    return ViewScores(scores, labels, order, {int(v): views.paths[int(v)] for v in order})


def accuracy(scores: Tensor, labels: Tensor, num_classes: int) -> Dict[str, Any]:
    """top-1 / top-5 accuracy (%) of (V, K) scores and per-class top-1 (%, None for a class
    without videos); "num_videos" and "chance" (100 / K) for reading them."""
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices
    hit1 = top[:, 0] == labels
    hit5 = (top == labels[:, None]).any(dim=1)
    per_class = []
    for k in range(num_classes):
        members = labels == k
        per_class.append(100.0 * float(hit1[members].float().mean()) if members.any() else None)
    return {
        "top1": 100.0 * float(hit1.float().mean()),
        "top5": 100.0 * float(hit5.float().mean()),
        "per_class_top1": per_class,
        "num_videos": int(labels.numel()),
        "chance": 100.0 / num_classes,
    }


def evaluate(
    model: nn.Module,
    loader: Iterable[Dict[str, Any]],
    device: torch.device,
    num_classes: int,
    head_act: str = "softmax",
    ensemble_method: str = "sum",
) -> Dict[str, Any]:
    """Accuracies of `model` on `loader`, views combined per video; the per-video scores
    ride along under "videos" (a ViewScores)."""
    views = predict_views(model, loader, device, num_classes, head_act)
    videos = ensemble_views(views, ensemble_method)
    metrics = accuracy(videos.scores, videos.labels, num_classes)
    metrics["views_per_video"] = views.scores.shape[0] // videos.scores.shape[0]
    metrics["videos"] = videos
    return metrics
