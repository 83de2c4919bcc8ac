"""Representation probes: how well a frozen encoder's features separate labelled classes.

Three read-outs of cached features, each a plain function on tensors:
- k-NN: cosine similarity to the labelled set, the k nearest vote with weight
  exp(similarity / temperature) (Wu et al. 2018, sec. 3.4; DINO's and solo-learn's
  online evaluation); by default on standardized features, since every clip's pooled
  features share a large common part and a few dimensions of large spread (colour),
  which a raw cosine would mostly compare;
- linear probe: a logistic regression on the pooled features, standardized with the
  labelled set's statistics (MAE's BatchNorm without affine before the head, appendix A.2),
  fitted to convergence by L-BFGS;
- attentive probe: one learned query cross-attending the frozen tokens, then a linear
  classifier (V-JEPA's evaluation, sec. 4): it can weigh the tokens that matter, which a
  mean over mostly-background tokens cannot.

During pretraining the ProbeHook (hooks/evaluation.py) runs a `ProbeEvaluation`: k-NN (and, if
asked, the linear probe) on features encoded once per evaluation. The `build_*(cfg, ...)`
functions at the end are the only ones here that read the config.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from slowmask.data import EvalTransform, build_clip_sampler, build_video_opener
from slowmask.data.datasets.image_folder import image_list
from slowmask.features import MediaClips
from slowmask.features.encode import encoder_tokens
from slowmask.features.media import collate_media
from slowmask.utils.errors import SlowmaskError

from .distributed import get_rank, get_world_size, is_distributed

logger = logging.getLogger(__name__)


class ProbeError(SlowmaskError, ValueError):
    """A probe set that cannot be scored (no items, labels outside the classes)."""

    kind = "data"


@dataclass
class ProbeSet:
    """Frozen features of a labelled set: pooled (N, D) float32, tokens (N, L, D)
    float32 or None when not kept, labels (N,) int64."""

    pooled: Tensor
    labels: Tensor
    tokens: Optional[Tensor] = None


def top1(predictions: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent of (M,) predicted classes against (M,) labels."""
    return 100.0 * (predictions == labels).double().mean().item()


def knn_predict(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, k: int = 20, temperature: float = 0.07
) -> Tensor:
    """(M,) classes of `query` (M, D) voted by its k most cosine-similar rows of `train`
    (N, D) with labels (N,), each vote weighted exp(similarity / temperature)."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"k-NN needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(train.float(), dim=1).T  # (M, N)
    nearest, index = similarity.topk(min(k, train.shape[0]), dim=1)  # (M, k)
    votes = torch.zeros(query.shape[0], num_classes)
    votes.scatter_add_(1, train_labels[index], (nearest / temperature).exp())
    return votes.argmax(dim=1)


def standardized(train: Tensor, *others: Tensor, eps: float = 1e-6) -> List[Tensor]:
    """`train` and `others` (*, D) shifted and scaled by the per-dimension mean and std
    of `train`'s rows (over every leading dimension)."""
    flat = train.reshape(-1, train.shape[-1])
    mean, std = flat.mean(dim=0), flat.std(dim=0, unbiased=False) + eps
    return [(x - mean) / std for x in (train, *others)]


def seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """`make()` with the CPU generator seeded by `seed`, the global random state restored
    afterwards: a probe during training must not change the run's data order or masks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def fit_classifier(
    head: nn.Module,
    inputs: Tensor,
    labels: Tensor,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int = 0,
) -> nn.Module:
    """Train `head` on cached `inputs` (N, ...) -> logits (N, K) with cross-entropy:
    AdamW, a cosine learning rate over `epochs`, shuffles from a generator seeded by `seed`."""
    if epochs < 1:
        raise ValueError(f"a probe classifier needs at least one epoch, got {epochs}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(inputs.shape[0] / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    head.train()
    with torch.enable_grad():
        for _ in range(epochs):
            for batch in torch.randperm(inputs.shape[0], generator=generator).split(batch_size):
                loss = F.cross_entropy(head(inputs[batch]), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    return head.eval()


def linear_probe_predict(
    train: Tensor, train_labels: Tensor, query: Tensor, num_classes: int, max_iters: int = 200,
    l2: float = 0.1, seed: int = 0,
) -> Tensor:
    """(M,) classes of `query` (M, D) from a multinomial logistic regression on
    standardized `train` (N, D) features with labels (N,), fitted to convergence by
    full-batch L-BFGS with an `l2` * |W|^2 / 2 penalty (CLIP's linear-probe protocol,
    Radford et al. 2021, appendix A.3): with a few labelled items per class a
    stochastic optimizer's result depends on its schedule more than on the features."""
    if max_iters < 1:
        raise ValueError(f"the linear probe needs at least one L-BFGS iteration, got {max_iters}")
    train, query = standardized(train.float(), query.float())
    head = seeded(lambda: nn.Linear(train.shape[1], num_classes), seed)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=max_iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(train), train_labels) + l2 / 2 * head.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return head(query).argmax(dim=1)


class AttentivePooler(nn.Module):
    """(B, L, D) frozen tokens -> (B, num_classes) logits: one learned query attends
    the normalized tokens (multi-head cross-attention), its output goes through a
    LayerNorm to a linear classifier."""

    def __init__(self, dim: int, num_classes: int, num_heads: int = 1) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.norm_tokens = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_pooled = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        batch = tokens.shape[0]
        keys = self.norm_tokens(tokens)
        pooled, _ = self.attention(self.query.expand(batch, -1, -1), keys, keys, need_weights=False)  # (B, 1, D)
        return self.classifier(self.norm_pooled(pooled[:, 0]))


def attentive_probe_predict(
    train_tokens: Tensor, train_labels: Tensor, query_tokens: Tensor, num_classes: int, epochs: int = 100,
    lr: float = 0.003, weight_decay: float = 0.01, batch_size: int = 64, num_heads: int = 1, seed: int = 0,
) -> Tensor:
    """(M,) classes of `query_tokens` (M, L, D) from an AttentivePooler trained on
    standardized `train_tokens` (N, L, D) with labels (N,)."""
    train_tokens, query_tokens = standardized(train_tokens.float(), query_tokens.float())
    head = seeded(lambda: AttentivePooler(train_tokens.shape[-1], num_classes, num_heads), seed)
    fit_classifier(head, train_tokens, train_labels, epochs, lr, weight_decay, batch_size, seed)
    with torch.no_grad():
        return head(query_tokens).argmax(dim=1)


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
) -> ProbeSet:
    """Encode every item of `clips` (MediaClips' items; a rank's share of them in a
    multi-process job, gathered afterwards) with `model`'s encoder; pooled = the mean of
    its grid tokens.
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
            grid_tokens = encoder_tokens(model, batch["clip"].to(device)).float().cpu()  # (B, N, D)
            pooled.append(grid_tokens.mean(dim=1))
            if keep_tokens:
                tokens.append(grid_tokens)
            kept.extend(batch["index"])
    finally:
        model.train(was_training)
    dim = pooled[0].shape[1] if pooled else 0
    order = torch.as_tensor(kept, dtype=torch.long)
    return ProbeSet(
        pooled=gather_rows(torch.cat(pooled) if pooled else torch.zeros(0, dim)),
        labels=gather_rows(torch.as_tensor(labels, dtype=torch.long)[order]),
        tokens=gather_rows(torch.cat(tokens)) if keep_tokens and tokens else None,
    )


def probe_scores(
    train: ProbeSet, query: ProbeSet, num_classes: int, probes: Dict[str, Callable[..., Tensor]]
) -> Dict[str, float]:
    """{name: top-1 %} of each probe `probes[name](train, query, num_classes)` -> (M,)
    predicted classes of `query`."""
    return {name: top1(predict(train, query, num_classes), query.labels) for name, predict in probes.items()}



def build_probe_clips(cfg: CfgNode, split: str, max_items: int = 0) -> Tuple[MediaClips, List[int]]:
    """The labelled `split` of PROBE.PATH_TO_DATA_DIR (else DATA.PATH_TO_DATA_DIR): its
    {split}.csv, or the class folders of {split}/, as one centre view per item (central
    window and crop, no augmentation); with `max_items` > 0, that many items evenly
    spread over the list. Returns the clips and their labels."""
    data_dir = cfg.PROBE.PATH_TO_DATA_DIR or cfg.DATA.PATH_TO_DATA_DIR
    items = list(image_list(data_dir, split, cfg.DATA.PATH_PREFIX, cfg.DATA.PATH_LABEL_SEPARATOR))
    if max_items and len(items) > max_items:
        items = [items[i * len(items) // max_items] for i in range(max_items)]
    crop = cfg.DATA.TRAIN_CROP_SIZE  # the encoder's input size
    clips = MediaClips(
        [path for path, _ in items],
        open_video=build_video_opener(cfg),
        sampler=build_clip_sampler(cfg, "val"),
        transform=EvalTransform(crop, crop, cfg.DATA.MEAN, cfg.DATA.STD),
        num_frames=cfg.DATA.NUM_FRAMES,
    )
    return clips, [label for _, label in items]


def build_probes(cfg: CfgNode, linear: bool, attentive: bool = False) -> Dict[str, Callable[..., Tensor]]:
    """{name: (train ProbeSet, query ProbeSet, num_classes) -> (M,) classes}: k-NN
    (PROBE.KNN_K, PROBE.KNN_TEMPERATURE, PROBE.KNN_STANDARDIZE), and the linear (PROBE.LINEAR_*) and attentive
    (PROBE.ATTENTIVE_*) probes when asked."""
    p = cfg.PROBE
    def knn(train: ProbeSet, query: ProbeSet, num_classes: int) -> Tensor:
        memory, queries = train.pooled, query.pooled
        if p.KNN_STANDARDIZE:
            memory, queries = standardized(memory, queries)
        return knn_predict(memory, train.labels, queries, num_classes, p.KNN_K, p.KNN_TEMPERATURE)

    probes: Dict[str, Callable[..., Tensor]] = {"knn": knn}
    if linear:
        probes["linear"] = lambda train, query, k: linear_probe_predict(
            train.pooled, train.labels, query.pooled, k, p.LINEAR_MAX_ITERS, p.LINEAR_L2, cfg.RNG_SEED)
    if attentive:
        probes["attentive"] = lambda train, query, k: attentive_probe_predict(
            train.tokens, train.labels, query.tokens, k, p.ATTENTIVE_EPOCHS, p.ATTENTIVE_LR,
            p.ATTENTIVE_WEIGHT_DECAY, p.HEAD_BATCH_SIZE, p.ATTENTIVE_HEADS, cfg.RNG_SEED)
    return probes


class ProbeEvaluation:
    """() -> {probe: top-1 %}: encodes the labelled `train_clips` and the scored
    `eval_clips` with `model` once, then scores every probe of `probes` on the cached
    features. `prepare()` decodes both sets into memory (CachedClips) for good."""

    def __init__(
        self,
        model: nn.Module,
        train_clips: Dataset,
        train_labels: Sequence[int],
        eval_clips: Dataset,
        eval_labels: Sequence[int],
        probes: Dict[str, Callable[..., Tensor]],
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
        return probe_scores(train, query, self.num_classes, self.probes)


def build_probe_evaluation(
    cfg: CfgNode, model: nn.Module, device: torch.device, eval_split: str, attentive: bool = False
) -> ProbeEvaluation:
    """The ProbeEvaluation of PROBE.TRAIN_SPLIT (at most PROBE.TRAIN_MAX_ITEMS items) as
    the labelled set and `eval_split` as the scored one, with the probes of build_probes."""
    train_clips, train_labels = build_probe_clips(cfg, cfg.PROBE.TRAIN_SPLIT, cfg.PROBE.TRAIN_MAX_ITEMS)
    eval_clips, eval_labels = build_probe_clips(cfg, eval_split)
    encode = dict(device=device, batch_size=cfg.PROBE.BATCH_SIZE, keep_tokens=attentive,
                  num_workers=cfg.DATA_LOADER.NUM_WORKERS)
    return ProbeEvaluation(
        model, train_clips, train_labels, eval_clips, eval_labels,
        probes=build_probes(cfg, cfg.PROBE.LINEAR, attentive),
        num_classes=cfg.PROBE.NUM_CLASSES or max(train_labels) + 1,
        encode=encode,
        split_names=(cfg.PROBE.TRAIN_SPLIT, eval_split),
    )
