"""Evaluating a classifier: scores of every view, their ensemble per video, accuracies;
and the multi-view test of a trained classifier, set up from the config (`run_test`).

Multi-view testing (PySlowFast's, TEST.ENABLE): a test dataset yields each video as
TEST.NUM_ENSEMBLE_VIEWS temporal clips x TEST.NUM_SPATIAL_CROPS crops; the
classifier's probabilities of a video's views are averaged ("sum") or maxed ("max"),
and top-1 / top-5 / per-class accuracy are computed on the per-video scores (top-5 only
with more than 5 classes: with fewer it is 100 % by construction). The
classifier is TEST.CHECKPOINT_FILE_PATH, or this run's newest, best validated or averaged
weights (TEST.CHECKPOINT "last", "best", "ema": `checkpoint_to_test`), all through the
same multi-view path; the main process writes OUTPUT_DIR/test_results.json and, with
TEST.SAVE_RESULTS_PATH, the per-video scores. Validation during training is the same
evaluation with one view per video (the PeriodicValidation hook). In a multi-process job
each process scores whole videos and the per-video rows are gathered to all processes.
"""

import logging
import os
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import simplejson
import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr
from torch import Tensor, nn

from slowmask import checkpoint
from slowmask.checkpoint import PRETRAINING_ONLY, state_diff
from slowmask.config.unused_keys import report_unused_keys
from slowmask.data import build_loader
from slowmask.methods import build_model
from slowmask.utils.logging import setup_logging

from .distributed import gather_objects, gather_rows, is_main_process
from .devices import select_device
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


# Top-k of the top-k accuracy; reported only for more classes than this (with K <= 5 it is 100 %).
TOP_K = 5


def chance_top1(num_classes: int) -> float:
    """Top-1 % of guessing uniformly among `num_classes` classes, 100 / K: "chance"
    wherever slowmask reports it (test results, probes, the demo)."""
    return 100.0 / num_classes


def majority_baseline(labels: Tensor) -> float:
    """Top-1 % of always answering the most frequent class of (V,) `labels`: the least a
    classifier must beat; above chance when the classes are unbalanced, so it is reported
    beside chance under its own name."""
    return 100.0 * torch.bincount(labels).max().item() / labels.numel()


def accuracy(scores: Tensor, labels: Tensor, num_classes: int) -> Dict[str, Any]:
    """top-1 / top-5 accuracy (%) of (V, K) scores (top-5 only for K > TOP_K) and
    per-class top-1 (%, None for a class without videos); "num_videos", "chance" (100 / K)
    and "majority_baseline" (the most frequent class's share) for reading them."""
    top = scores.topk(min(TOP_K, scores.shape[1]), dim=1).indices
    hit1 = top[:, 0] == labels
    per_class = []
    for k in range(num_classes):
        members = labels == k
        per_class.append(100.0 * float(hit1[members].float().mean()) if members.any() else None)
    metrics: Dict[str, Any] = {"top1": 100.0 * float(hit1.float().mean())}
    if num_classes > TOP_K:
        metrics["top5"] = 100.0 * float((top == labels[:, None]).any(dim=1).float().mean())
    return {
        **metrics,
        "per_class_top1": per_class,
        "num_videos": int(labels.numel()),
        "chance": chance_top1(num_classes),
        "majority_baseline": majority_baseline(labels),
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


def shown_accuracies(metrics: Dict[str, Any]) -> str:
    """The accuracies of `accuracy`'s metrics as a log line shows them: "top-1 50.00 %,
    top-5 75.00 %", top-5 when there is one."""
    top5 = f", top-5 {metrics['top5']:.2f} %" if "top5" in metrics else ""
    return f"top-1 {metrics['top1']:.2f} %{top5}"


# The multi-view test, set up from the config.

RESULTS_FILE = "test_results.json"


# TEST.CHECKPOINT -> (OUTPUT_DIR -> the run's file of that choice, or None; what writes it).
RUN_CHECKPOINTS: Dict[str, Tuple[Callable[[str], Optional[str]], str]] = {
    "last": (checkpoint.last_checkpoint, "the newest checkpoint_epoch_*.pyth, written by training"),
    "best": (lambda output_dir: _existing(checkpoint.best_checkpoint_path(output_dir)),
             "checkpoint_best.pyth, written by a fine-tuning run's validation"),
    "ema": (lambda output_dir: _existing(checkpoint.ema_checkpoint_path(output_dir)),
            "checkpoint_ema.pyth, written at the end of a fine-tuning run with MODEL.EMA.ENABLE True"),
}


def _existing(path: str) -> Optional[str]:
    return path if g_pathmgr.exists(path) else None


def checkpoint_to_test(cfg: CfgNode) -> str:
    """TEST.CHECKPOINT_FILE_PATH, else the file of this run that TEST.CHECKPOINT names in
    OUTPUT_DIR/checkpoints (RUN_CHECKPOINTS): the newest, the best validated, or the
    weights' moving average."""
    if cfg.TEST.CHECKPOINT_FILE_PATH:
        if cfg.TEST.CHECKPOINT != "last":
            logger.warning("testing TEST.CHECKPOINT_FILE_PATH %s as given: TEST.CHECKPOINT %r chooses among this "
                           "run's own files, and is not used", cfg.TEST.CHECKPOINT_FILE_PATH, cfg.TEST.CHECKPOINT)
        return cfg.TEST.CHECKPOINT_FILE_PATH
    find, written_by = RUN_CHECKPOINTS[cfg.TEST.CHECKPOINT]
    path = find(cfg.OUTPUT_DIR)
    if not path:
        raise checkpoint.CheckpointError(
            f"nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {checkpoint.checkpoint_dir(cfg.OUTPUT_DIR)} "
            f"holds no file for TEST.CHECKPOINT {cfg.TEST.CHECKPOINT!r} ({written_by}); give "
            "TEST.CHECKPOINT_FILE_PATH a fine-tuned classifier, or choose another TEST.CHECKPOINT"
        )
    logger.info("TEST.CHECKPOINT %r: %s", cfg.TEST.CHECKPOINT, path)
    return path


def load_classifier(path: str, model: nn.Module) -> None:
    """Load a classifier checkpoint as it is (a test must not run half-initialized).

    Raises:
        CheckpointError: the checkpoint is a masked-pretraining one (no trained classifier
            head: it has to be fine-tuned first), or it does not fit the model.
    """
    state = checkpoint.read_any_checkpoint(path)["model_state"]
    pretraining = [name for name in state if name.startswith(PRETRAINING_ONLY)]
    if pretraining:
        raise checkpoint.CheckpointError(
            f"cannot test {path}: it is a masked-pretraining checkpoint (it holds {pretraining[0]} and "
            f"{len(pretraining) - 1} more pretraining-only tensors, and no trained classifier head). "
            f"Fine-tune it first (TRAIN.ENABLE True TRAIN.CHECKPOINT_FILE_PATH {path}) and test the "
            "result, or give TEST.CHECKPOINT_FILE_PATH a classifier checkpoint"
        )
    try:
        checkpoint.unwrapped(model).load_state_dict(state, strict=True)
    except RuntimeError:
        # The raw error has a line per key; the diff groups them by module.
        diff = state_diff(state, checkpoint.unwrapped(model).state_dict())
        raise checkpoint.CheckpointError(
            f"cannot test {path}: it does not fit this model:\n{diff.summary()}\nTest it with the "
            "config of the run that wrote it (the checkpoint holds that config under 'cfg')"
        ) from None
    logger.info("testing the classifier of %s", path)


def save_results(cfg: CfgNode, metrics: Dict[str, Any]) -> None:
    """Accuracies as JSON in OUTPUT_DIR; per-video scores at TEST.SAVE_RESULTS_PATH
    (relative to OUTPUT_DIR), {"scores" (V, K), "labels" (V,), "paths" [V]} in the format
    its extension names: `.pkl` a plain pickle (numpy arrays and a list of str, what
    PySlowFast's users read with `pickle.load`), any other (`.pt`, `.pyth`) a `torch.save`
    file of tensors."""
    videos = metrics["videos"]
    g_pathmgr.mkdirs(cfg.OUTPUT_DIR)
    summary = {key: value for key, value in metrics.items() if key != "videos"}
    with g_pathmgr.open(os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE), "w") as f:
        simplejson.dump(summary, f, indent=2)
    if cfg.TEST.SAVE_RESULTS_PATH:
        path = os.path.join(cfg.OUTPUT_DIR, cfg.TEST.SAVE_RESULTS_PATH)
        paths = [videos.paths[int(v)] for v in videos.video]
        with g_pathmgr.open(path, "wb") as f:
            if path.endswith(".pkl"):
                plain = {"scores": videos.scores.numpy(), "labels": videos.labels.numpy(), "paths": paths}
                pickle.dump(plain, f, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                torch.save({"scores": videos.scores, "labels": videos.labels, "paths": paths}, f)
        logger.info("per-video scores written to %s", path)


def run_test(cfg: CfgNode) -> Dict[str, Any]:
    """Multi-view test of the classifier, in every process of the job; returns the
    metrics of the whole test split (see evaluate.accuracy) and the "checkpoint" tested, on
    every process (test_results.json holds them)."""
    setup_logging(cfg.OUTPUT_DIR, is_main_process())
    report_unused_keys(cfg)  # after the set-up, so the line reaches the console and stdout.log
    device = select_device(cfg)
    model = build_model(cfg).to(device)
    path = checkpoint_to_test(cfg)
    load_classifier(path, model)
    loader = build_loader(cfg, "test")
    metrics = evaluate(
        model, loader, device, cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT, cfg.DATA.ENSEMBLE_METHOD
    )
    metrics["checkpoint"] = path
    if not is_main_process():
        return metrics
    save_results(cfg, metrics)
    logger.info(
        "test of %s: %s over %d videos x %d views (chance %.2f %%, majority baseline %.2f %%); results in %s",
        path, shown_accuracies(metrics), metrics["num_videos"], metrics["views_per_video"], metrics["chance"],
        metrics["majority_baseline"], os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE),
    )
    return metrics
