"""Representation probes: how well a frozen encoder's features separate labelled classes.

Three read-outs of cached features, each a plain function on tensors:
- k-NN: cosine similarity to the labelled set, the k nearest vote with weight
  exp(similarity / temperature) (Wu et al. 2018, sec. 3.4; DINO's and solo-learn's
  online evaluation); by default on standardized features, since every clip's pooled
  features share a large common part and a few dimensions of large spread (colour),
  which a raw cosine would mostly compare;
- linear probe: a logistic regression on the pooled features, standardized with the
  labelled set's statistics (MAE's BatchNorm without affine before the head, appendix A.2),
  fitted to convergence by L-BFGS; its L2 penalty fixed, or chosen from a grid by
  cross-validation on the labelled set (CLIP's protocol chooses it on validation data);
- attentive probe: a learned query cross-attending the frozen tokens, then a linear
  classifier (V-JEPA's evaluation, sec. 4; probe_heads.py): it can weigh the tokens that
  matter, which a mean over mostly-background tokens cannot. V-JEPA 2's protocol trains a
  grid of such heads (learning rates x weight decays) in one pass and reports the best,
  naming its settings.

Which features are read is the pooling (features/pooling.py: mean of the grid tokens,
class token, last k blocks). The scored split may be encoded as several views per item
(temporal clips x spatial crops); each probe's class scores (k-NN votes, logits) are then
averaged over an item's views before its top-1 is taken, as multi-view testing does.

During pretraining the ProbeHook (hooks/evaluation.py) runs a `ProbeEvaluation`: k-NN (and, if
asked, the linear and attentive probes) on features encoded once per evaluation. The
`build_*(cfg, ...)` functions at the end are the only ones here that read the config.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from slowmask.data import EvalTransform, build_clip_sampler, build_video_opener
from slowmask.data.clip_windows import OffsetClipSampler, UniformClipSampler
from slowmask.data.datasets.image_folder import image_list
from slowmask.features import MediaClips
from slowmask.features.media import collate_media
from slowmask.config.checks import choice_problem, raise_problems
from slowmask.features.pooling import DEFAULT_POOLING, POOLINGS, check_pooling_fits, pooled_features
from slowmask.utils.errors import SlowmaskError

from .distributed import get_rank, get_world_size, is_distributed
from .probe_heads import (
    ATTENTIVE_POOLERS, AttentivePooler, HeadScores, attentive_heads, attentive_probe_predict, cross_validated_l2,
    linear_probe_predict, linear_probe_scores, standardized,
)

logger = logging.getLogger(__name__)

# A probe: (labelled ProbeSet, scored ProbeSet, num_classes) -> one HeadScores per trained head.
Probe = Callable[["ProbeSet", "ProbeSet", int], List[HeadScores]]


class ProbeError(SlowmaskError, ValueError):
    """A probe set that cannot be scored (no items, labels outside the classes)."""

    kind = "data"


@dataclass
class ProbeSet:
    """Frozen features of a labelled set, one row per encoded view: pooled (N, D)
    float32, tokens (N, L, D) float32 or None when not kept, labels (N,) int64, and
    items (N,) int64, the item each row is a view of (None: one row per item)."""

    pooled: Tensor
    labels: Tensor
    tokens: Optional[Tensor] = None
    items: Optional[Tensor] = None


def top1(predictions: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent of (M,) predicted classes against (M,) labels."""
    return 100.0 * (predictions == labels).double().mean().item()


def knn_scores(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, k: int = 20, temperature: float = 0.07
) -> Tensor:
    """(M, K) votes for each class of `query` (M, D) by its k most cosine-similar rows of
    `train` (N, D) with labels (N,), each vote weighted exp(similarity / temperature)."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"k-NN needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(train.float(), dim=1).T  # (M, N)
    nearest, index = similarity.topk(min(k, train.shape[0]), dim=1)  # (M, k)
    votes = torch.zeros(query.shape[0], num_classes)
    return votes.scatter_add_(1, train_labels[index], (nearest / temperature).exp())


def knn_predict(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, k: int = 20, temperature: float = 0.07
) -> Tensor:
    """(M,) classes of `query` with the most votes (`knn_scores`)."""
    return knn_scores(train, train_labels, query, num_classes, k, temperature).argmax(dim=1)


def linear_heads(train: ProbeSet, query: ProbeSet, num_classes: int, l2s: Sequence[float], folds: int,
                 max_iters: int, seed: int) -> List[HeadScores]:
    """The linear probe as a probe of one head: with one penalty in `l2s`, that one (settings
    {}); with several, the one `cross_validated_l2` chooses on `train`, named in the head's
    settings {"l2": ...}."""
    l2, settings = l2s[0], {}
    if len(l2s) > 1:
        items = train.items if train.items is not None else torch.arange(len(train.labels))
        l2, accuracy = cross_validated_l2(train.pooled, train.labels, items, num_classes, l2s, folds, max_iters, seed)
        logger.info("linear probe: penalty %g chosen by %d-fold cross-validation on the labelled set (top-1 %s)", l2,
                    folds, ", ".join(f"{value:g}: {top:.1f}" for value, top in accuracy.items()))
        settings = {"l2": l2}
    scores = linear_probe_scores(train.pooled, train.labels, query.pooled, num_classes, max_iters, l2, seed)
    return [HeadScores(scores, settings)]


def check_labels(labels: Tensor, num_classes: int, what: str) -> None:
    """ProbeError unless `labels` lie in [0, num_classes)."""
    if labels.numel() == 0:
        raise ProbeError(f"the {what} probe set has no readable items")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ProbeError(
            f"the {what} probe set has labels in [{int(labels.min())}, {int(labels.max())}], outside "
            f"[0, {num_classes}); set PROBE.NUM_CLASSES to the number of classes of its list"
        )


def gather_rows(rows: Tensor) -> Tensor:
    """Every rank's (n_r, ...) rows concatenated in rank order (the tensor itself in a
    one-process job); ranks may hold different counts."""
    if not is_distributed():
        return rows
    gathered: List[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, rows.cpu())
    return torch.cat(gathered)


class CachedClips(Dataset):
    """Every item of a dataset of clips (MediaClips' items), decoded once by `num_workers`
    loader processes and then served from memory: the probe set is fixed (one centre
    view, no augmentation), so later probes only run the encoder. Holds N x 3 x T x S x S
    float32 values; meant for small probe sets."""

    def __init__(self, clips: Dataset, num_workers: int = 0) -> None:
        self.paths = list(getattr(clips, "paths", []))
        loader = DataLoader(clips, batch_size=None, num_workers=num_workers)
        self.items = list(loader)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


@torch.no_grad()
def encode_probe_set(
    model: nn.Module,
    clips: Dataset,
    labels: Sequence[int],
    device: torch.device,
    batch_size: int = 16,
    keep_tokens: bool = False,
    num_workers: int = 0,
    pooling: str = DEFAULT_POOLING,
    last_k: int = 1,
) -> ProbeSet:
    """Encode every item of `clips` (MediaClips' items, one per view; a rank's share of
    them in a multi-process job, gathered afterwards) with `model`'s encoder, read by
    `pooling` (features/pooling.py; `last_k` blocks for the "*_last_k" ones). `labels`
    holds one label per input; row r of the result is a view of input `items[r]`.
    The model's training mode is restored afterwards."""
    share = list(range(get_rank(), len(clips), get_world_size()))
    loader = DataLoader(Subset(clips, share), batch_size=batch_size, num_workers=num_workers, collate_fn=collate_media)
    was_training = model.training
    pooled, tokens, kept = [], [], []
    try:
        for batch in loader:
            for path, reason in batch["failed"]:
                logger.warning("probe: cannot read %s (%s); left out", path, reason)
            if batch["clip"] is None:
                continue
            features = pooled_features(model, batch["clip"].to(device), pooling, last_k)
            pooled.append(features.pooled.cpu())
            if keep_tokens:
                tokens.append(features.tokens.cpu())
            kept.extend(batch["index"])
    finally:
        model.train(was_training)
    dim = pooled[0].shape[1] if pooled else 0
    items = gather_rows(torch.as_tensor(kept, dtype=torch.long))
    return ProbeSet(
        pooled=gather_rows(torch.cat(pooled) if pooled else torch.zeros(0, dim)),
        labels=torch.as_tensor(labels, dtype=torch.long)[items],
        tokens=gather_rows(torch.cat(tokens)) if keep_tokens and tokens else None,
        items=items,
    )


def _view_groups(items: Tensor) -> Tuple[Tensor, Tensor]:
    """The rows (M,) `items` sorted by item (stable) and each item's number of rows, in
    increasing item order."""
    order = torch.argsort(items, stable=True)
    _, counts = torch.unique_consecutive(items[order], return_counts=True)
    return order, counts


def item_labels(probe_set: ProbeSet) -> Tensor:
    """(I,) the label of each item of `probe_set`, in increasing item order."""
    if probe_set.items is None:
        return probe_set.labels
    order, counts = _view_groups(probe_set.items)
    return probe_set.labels[order][counts.cumsum(0) - counts]


def average_views(scores: Tensor, items: Optional[Tensor]) -> Tensor:
    """(I, K) class scores of each item, the mean of its views' rows of `scores` (M, K),
    items in increasing order; `items` (M,) says which item each row is a view of (None:
    one row per item, returned as they are)."""
    if items is None:
        return scores
    order, counts = _view_groups(items)
    return torch.stack([views.mean(dim=0) for views in scores[order].split(counts.tolist())])


@dataclass
class ProbeOutcome:
    """A probe's top-1 % on the scored items: `top1` of its best head, `best` that head's
    settings (HeadScores': {} when there is nothing to name), `heads` [(settings, top-1 %)]
    of every head trained."""

    top1: float
    best: Dict[str, float] = field(default_factory=dict)
    heads: List[Tuple[Dict[str, float], float]] = field(default_factory=list)

    def best_head(self) -> str:
        """"best of 20 heads: lr 0.005, weight_decay 0.01"; "l2 0.001" for one head whose
        settings were chosen; "" otherwise."""
        if not self.best:
            return ""
        settings = ", ".join(f"{name} {value:g}" for name, value in self.best.items())
        return f"best of {len(self.heads)} heads: {settings}" if len(self.heads) > 1 else settings

    def describe(self) -> str:
        """"83.33", or "83.33 (best of 20 heads: lr 0.005, weight_decay 0.01)"."""
        note = self.best_head()
        return f"{self.top1:.2f} ({note})" if note else f"{self.top1:.2f}"


def probe_outcomes(train: ProbeSet, query: ProbeSet, num_classes: int, probes: Dict[str, Probe]
                   ) -> Dict[str, ProbeOutcome]:
    """{name: ProbeOutcome} of each probe of `probes` on the items of `query`: each head's
    scores averaged over an item's views, its top-1 taken; the best head (the first of
    equal ones) is the probe's figure. As V-JEPA 2's evaluation, heads are compared on the
    scored split itself: the figure is the best of the grid, `heads` shows the spread."""
    outcomes = {}
    for name, probe in probes.items():
        labels = item_labels(query)
        heads = [(head.settings, top1(average_views(head.scores, query.items).argmax(dim=1), labels))
                 for head in probe(train, query, num_classes)]
        best = max(range(len(heads)), key=lambda i: heads[i][1])
        outcomes[name] = ProbeOutcome(heads[best][1], heads[best][0], heads)
    return outcomes


def probe_scores(train: ProbeSet, query: ProbeSet, num_classes: int, probes: Dict[str, Probe]) -> Dict[str, float]:
    """{name: top-1 %} of each probe of `probes` (its best head's, `probe_outcomes`)."""
    return {name: outcome.top1 for name, outcome in probe_outcomes(train, query, num_classes, probes).items()}


def build_probe_clips(cfg: CfgNode, split: str, max_items: int = 0, views: Tuple[int, int] = (1, 1),
                      ) -> Tuple[MediaClips, List[int]]:
    """The labelled `split` of PROBE.PATH_TO_DATA_DIR (else DATA.PATH_TO_DATA_DIR): its
    {split}.csv, or the class folders of {split}/; with `max_items` > 0, that many items
    evenly spread over the list. Each item as `views` = (temporal clips, spatial crops):
    one view is the central window and crop, several are spread over the video (with
    DATA.USE_OFFSET_SAMPLING from its first to its last frame) and along the frame's long
    side (PySlowFast's test views); no augmentation. Returns the clips
    and the items' labels."""
    data_dir = cfg.PROBE.PATH_TO_DATA_DIR or cfg.DATA.PATH_TO_DATA_DIR
    items = list(image_list(data_dir, split, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR))
    if max_items and len(items) > max_items:
        items = [items[i * len(items) // max_items] for i in range(max_items)]
    num_clips, num_crops = views
    crop = cfg.DATA.TRAIN_CROP_SIZE  # the encoder's input size
    windows = OffsetClipSampler if cfg.DATA.USE_OFFSET_SAMPLING else UniformClipSampler  # as testing's
    sampler = build_clip_sampler(cfg, "val") if num_clips == 1 else windows(
        cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TARGET_FPS, num_views=num_clips)
    clips = MediaClips(
        [path for path, _ in items],
        open_video=build_video_opener(cfg),
        sampler=sampler,
        transform=EvalTransform(crop, crop, cfg.DATA.MEAN, cfg.DATA.STD, num_views=num_crops),
        num_frames=cfg.DATA.NUM_FRAMES,
        num_clips=num_clips,
        num_crops=num_crops,
    )
    return clips, [label for _, label in items]


def probe_problems(cfg: CfgNode) -> List[str]:
    """The PROBE.* values the probes cannot run with: an unknown PROBE.POOLING or
    PROBE.ATTENTIVE_POOLER, a count below one."""
    p = cfg.PROBE
    problems = [choice_problem(cfg, "PROBE.POOLING", tuple(POOLINGS)),
                choice_problem(cfg, "PROBE.ATTENTIVE_POOLER", tuple(ATTENTIVE_POOLERS))]
    counts = {"PROBE.POOL_LAST_K": p.POOL_LAST_K, "PROBE.ATTENTIVE_DEPTH": p.ATTENTIVE_DEPTH,
              "PROBE.NUM_ENSEMBLE_VIEWS": p.NUM_ENSEMBLE_VIEWS, "PROBE.NUM_SPATIAL_CROPS": p.NUM_SPATIAL_CROPS}
    problems += [f"{key} is {value}; it must be at least 1" for key, value in counts.items() if value < 1]
    if len(p.LINEAR_L2S) > 1 and p.LINEAR_FOLDS < 2:
        problems.append(f"PROBE.LINEAR_FOLDS is {p.LINEAR_FOLDS}; choosing among PROBE.LINEAR_L2S needs at least 2 folds")
    problems += [f"PROBE.LINEAR_L2S holds {l2}; a penalty must be at least 0" for l2 in p.LINEAR_L2S if l2 < 0]
    return [problem for problem in problems if problem]


def clip_shape(cfg: CfgNode) -> Tuple[int, int, int, int]:
    """(3, T, S, S) of the clips the probes feed the encoder (DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE)."""
    return (3, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)


def probe_views(cfg: CfgNode) -> Tuple[int, int]:
    """(PROBE.NUM_ENSEMBLE_VIEWS, PROBE.NUM_SPATIAL_CROPS): the views of each scored item."""
    return cfg.PROBE.NUM_ENSEMBLE_VIEWS, cfg.PROBE.NUM_SPATIAL_CROPS


def attentive_settings(cfg: CfgNode) -> List[Tuple[float, float]]:
    """The (lr, weight decay) of each attentive head: every pair of PROBE.ATTENTIVE_LRS x
    PROBE.ATTENTIVE_WEIGHT_DECAYS, weight decay major (as V-JEPA 2's grid); an empty list
    stands for PROBE.ATTENTIVE_LR, PROBE.ATTENTIVE_WEIGHT_DECAY."""
    p = cfg.PROBE
    lrs = list(p.ATTENTIVE_LRS) or [p.ATTENTIVE_LR]
    decays = list(p.ATTENTIVE_WEIGHT_DECAYS) or [p.ATTENTIVE_WEIGHT_DECAY]
    return [(float(lr), float(wd)) for wd in decays for lr in lrs]


def build_probes(cfg: CfgNode, linear: bool, attentive: bool = False) -> Dict[str, Probe]:
    """{name: Probe}: k-NN (PROBE.KNN_K, PROBE.KNN_TEMPERATURE, PROBE.KNN_STANDARDIZE), and the linear
    (PROBE.LINEAR_*) and attentive (PROBE.ATTENTIVE_*) probes when asked. ConfigError
    naming every `probe_problems`."""
    raise_problems(probe_problems(cfg))
    p = cfg.PROBE
    def knn(train: ProbeSet, query: ProbeSet, num_classes: int) -> List[HeadScores]:
        memory, queries = train.pooled, query.pooled
        if p.KNN_STANDARDIZE:
            memory, queries = standardized(memory, queries)
        return [HeadScores(knn_scores(memory, train.labels, queries, num_classes, p.KNN_K, p.KNN_TEMPERATURE))]

    probes: Dict[str, Probe] = {"knn": knn}
    if linear:
        l2s = [float(l2) for l2 in p.LINEAR_L2S] or [p.LINEAR_L2]
        probes["linear"] = lambda train, query, k: linear_heads(
            train, query, k, l2s, p.LINEAR_FOLDS, p.LINEAR_MAX_ITERS, cfg.RNG_SEED)
    if attentive:
        pooler = ATTENTIVE_POOLERS[p.ATTENTIVE_POOLER]
        settings = attentive_settings(cfg)
        probes["attentive"] = lambda train, query, k: attentive_heads(
            train.tokens, train.labels, query.tokens, k, settings, p.ATTENTIVE_EPOCHS, p.HEAD_BATCH_SIZE,
            cfg.RNG_SEED, make=lambda dim, classes: pooler(
                dim, classes, p.ATTENTIVE_HEADS, p.ATTENTIVE_DEPTH, p.ATTENTIVE_MLP_RATIO))
    return probes


class ProbeEvaluation:
    """() -> {probe: top-1 %}: encodes the labelled `train_clips` and the scored
    `eval_clips` with `model` once, then scores every probe of `probes` on the cached
    features (a probe of several heads: its best, named in the log). `prepare()` decodes
    both sets into memory (CachedClips) for good."""

    def __init__(
        self,
        model: nn.Module,
        train_clips: Dataset,
        train_labels: Sequence[int],
        eval_clips: Dataset,
        eval_labels: Sequence[int],
        probes: Dict[str, Probe],
        num_classes: int,
        encode: Dict[str, Any],
        split_names: Tuple[str, str] = ("train", "val"),
    ) -> None:
        self.model = model
        self.sets = {"train": (train_clips, list(train_labels)), "eval": (eval_clips, list(eval_labels))}
        self.probes = probes
        self.num_classes = num_classes
        self.encode = dict(encode)
        self.split_names = split_names

    def prepare(self) -> None:
        self.sets = {name: (CachedClips(clips, self.encode.get("num_workers", 0)), labels)
                     for name, (clips, labels) in self.sets.items()}
        self.encode["num_workers"] = 0  # served from memory

    def __call__(self) -> Dict[str, float]:
        train, query = (encode_probe_set(self.model, clips, labels, **self.encode)
                        for clips, labels in self.sets.values())
        check_labels(train.labels, self.num_classes, self.split_names[0])
        check_labels(query.labels, self.num_classes, self.split_names[1])
        outcomes = probe_outcomes(train, query, self.num_classes, self.probes)
        for name, outcome in outcomes.items():
            if outcome.best:
                logger.info("probe %s: top-1 %s", name, outcome.describe())
        return {name: outcome.top1 for name, outcome in outcomes.items()}


def probe_encoding(cfg: CfgNode, device: torch.device, keep_tokens: bool) -> Dict[str, Any]:
    """encode_probe_set's settings: device, PROBE.BATCH_SIZE, DATA_LOADER.NUM_WORKERS,
    PROBE.POOLING and PROBE.POOL_LAST_K."""
    return dict(device=device, batch_size=cfg.PROBE.BATCH_SIZE, keep_tokens=keep_tokens,
                num_workers=cfg.DATA_LOADER.NUM_WORKERS, pooling=cfg.PROBE.POOLING, last_k=cfg.PROBE.POOL_LAST_K)


def build_probe_evaluation(
    cfg: CfgNode, model: nn.Module, device: torch.device, eval_split: str, attentive: bool = False
) -> ProbeEvaluation:
    """The ProbeEvaluation of PROBE.TRAIN_SPLIT (at most PROBE.TRAIN_MAX_ITEMS items, one
    view each) as the labelled set and `eval_split` (probe_views) as the scored one, with
    the probes of build_probes (the linear one with PROBE.LINEAR). ConfigError at once when
    PROBE.POOLING cannot read `model` (`check_pooling_fits`), not after the first epoch."""
    check_pooling_fits(model, cfg.PROBE.POOLING, cfg.PROBE.POOL_LAST_K, clip_shape(cfg))
    train_clips, train_labels = build_probe_clips(cfg, cfg.PROBE.TRAIN_SPLIT, cfg.PROBE.TRAIN_MAX_ITEMS)
    eval_clips, eval_labels = build_probe_clips(cfg, eval_split, views=probe_views(cfg))
    return ProbeEvaluation(
        model, train_clips, train_labels, eval_clips, eval_labels,
        probes=build_probes(cfg, cfg.PROBE.LINEAR, attentive),
        num_classes=cfg.PROBE.NUM_CLASSES or max(train_labels) + 1,
        encode=probe_encoding(cfg, device, keep_tokens=attentive),
        split_names=(cfg.PROBE.TRAIN_SPLIT, eval_split),
    )


__all__ = [
    "AttentivePooler", "CachedClips", "ProbeError", "ProbeEvaluation", "ProbeOutcome", "ProbeSet",
    "attentive_probe_predict", "average_views", "build_probe_clips", "build_probe_evaluation", "build_probes",
    "check_labels", "clip_shape", "cross_validated_l2", "encode_probe_set", "item_labels", "knn_predict", "knn_scores",
    "linear_heads", "linear_probe_predict", "linear_probe_scores", "probe_encoding", "probe_outcomes", "probe_problems",
    "probe_scores", "probe_views", "standardized", "top1",
]
