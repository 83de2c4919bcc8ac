"""Evaluating a classifier: scores of every view, their ensemble per video, accuracies.

Multi-view testing (PySlowFast's): a test dataset yields each video as
TEST.NUM_ENSEMBLE_VIEWS temporal clips x TEST.NUM_SPATIAL_CROPS crops; the
classifier's probabilities of a video's views are averaged ("sum") or maxed ("max"),
and top-1 / top-5 / per-class accuracy are computed on the per-video scores.
Validation during training is the same with one view per video. In a multi-process job
each process scores whole videos and the per-video rows are gathered to all processes.
"""

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Sequence

import torch
from torch import Tensor, nn

from .distributed import gather_objects, gather_rows
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


@dataclass
class VideoScores:
    """One row per video, in video-index order: scores (V, K) float32 of its views
    combined, labels (V,), video (V,) video index, views (V,) int64 number of views
    combined, paths {video index: path}."""

    scores: Tensor
    labels: Tensor
    video: Tensor
    views: Tensor
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
    "meta" holding "video_index" and "path") and collect the activated scores; none
    (N = 0) when this process's share of the split is empty."""
    activation = HEAD_ACTIVATIONS[head_act]
    was_training = model.training
    model.eval()
    scores: List[Tensor] = [torch.zeros(0, num_classes)]
    labels: List[Tensor] = [torch.zeros(0, dtype=torch.long)]
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
    return ViewScores(torch.cat(scores), torch.cat(labels), torch.as_tensor(videos, dtype=torch.long), paths)


def ensemble_views(views: ViewScores, method: str = "sum") -> VideoScores:
    """One row per video: its views' scores combined by `method`, in the order they came
    (a stable sort by video keeps it), so a video's row depends only on its own views."""
    combine = ENSEMBLES[method]
    order = torch.argsort(views.video, stable=True)
    video, counts = torch.unique_consecutive(views.video[order], return_counts=True)
    groups = views.scores[order].split(counts.tolist())
    scores = torch.stack([combine(group) for group in groups]) if groups else views.scores[:0]
    labels = views.labels[order][counts.cumsum(0) - counts]  # each video's first view's
    return VideoScores(scores, labels, video, counts, {int(v): views.paths[int(v)] for v in video})


def merge_shards(shards: Sequence[VideoScores]) -> VideoScores:
    """The videos of every process's share as one, in video-index order, each once.

    A video in several shares (a padding sampler repeats videos to even the shares out)
    is kept once, from the first share holding it.

    Raises:
        ValueError: a video is in several shares with different numbers of views (its
            views were split between processes, so no share holds its ensemble).
    """
    video = torch.cat([shard.video for shard in shards])
    views = torch.cat([shard.views for shard in shards])
    order = torch.argsort(video, stable=True)  # stable: a repeated video's first share leads
    ids, copies = torch.unique_consecutive(video[order], return_counts=True)
    first = copies.cumsum(0) - copies
    for row in (copies > 1).nonzero().flatten().tolist():
        counts = views[order[first[row] : first[row] + copies[row]]]
        if counts.min() != counts.max():
            raise ValueError(
                f"video {int(ids[row])} was scored by several processes with {sorted(counts.tolist())} "
                "views: its views were split between them"
            )
    keep = order[first]
    paths = {v: path for shard in reversed(shards) for v, path in shard.paths.items()}
    return VideoScores(
        torch.cat([shard.scores for shard in shards])[keep],
        torch.cat([shard.labels for shard in shards])[keep],
        ids,
        views[keep],
        {int(v): paths[int(v)] for v in ids},
    )


def gather_videos(videos: VideoScores) -> VideoScores:
    """Every process's per-video rows merged (`merge_shards`), on every process."""
    columns = [gather_rows(column) for column in (videos.scores, videos.labels, videos.video, videos.views)]
    paths = gather_objects(videos.paths)
    return merge_shards([VideoScores(*rows, rank_paths) for *rows, rank_paths in zip(*columns, paths)])


def views_per_video(videos: VideoScores) -> int:
    """The number of views every video got.

    Raises:
        ValueError: no videos, or videos got different numbers of views.
    """
    if videos.views.numel() == 0:
        raise ValueError("the evaluation split has no videos")
    low, high = int(videos.views.min()), int(videos.views.max())
    if low != high:
        raise ValueError(f"videos got different numbers of views ({low} to {high})")
    return low


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
    ride along under "videos" (a VideoScores).

    In a multi-process job every process calls it with its share of the split (whole
    videos, see data.index_samplers.VideoShardSampler) and gets the metrics of the whole split:
    the per-video rows are gathered, so each video counts once and the figures equal
    those of one process."""
    views = predict_views(model, loader, device, num_classes, head_act)
    videos = gather_videos(ensemble_views(views, ensemble_method))
    per_video = views_per_video(videos)
    metrics = accuracy(videos.scores, videos.labels, num_classes)
    metrics["views_per_video"] = per_video
    metrics["videos"] = videos
    return metrics
