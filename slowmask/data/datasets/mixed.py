"""Several datasets in one training run: each batch from one of them (OmniMAE, Girdhar et
al., 2023: one model pretrained on images and videos together), or, with
MULTI_DATASET.WEIGHTS, every batch holding items of all of them by weight (V-JEPA 2's
mixture of video datasets, whose clips share one shape; `WeightedMixSampler`).

Without weights a batch never mixes datasets: an image batch is (B, 3, 2, 224, 224) and a video batch
(B, 3, 16, 224, 224), which cannot be stacked, and each has its own mask ratio (the
paper masks 90 % of an image's patches and 95 % of a video's). The epoch is a schedule of
dataset indices, one per batch, drawn from (seed, epoch) only (omnivore's
`ConcatDataset`, batching strategy "use_one", max_steps "sum"): dataset d gives
int(repeat_factor_d * its batches per epoch) batches. Every rank draws the same
schedule, so the collective step sees one clip shape per step, and each rank reads
its own share of each dataset's items.

`MixedDataset` registers as TRAIN.DATASET "mixed"; its parts come from
MULTI_DATASET.OVERRIDES (one KEY VALUE list per dataset merged onto the config and
built by the existing builders) and it carries its `batch_sampler` (MixedBatchSampler or
WeightedMixSampler), which `build_loader` uses.
"""

import hashlib
import logging
from typing import Iterator, List, Optional, Sequence

import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode
from torch.utils.data import Dataset, Sampler

from slowmask.config import ConfigError
from slowmask.config.loading import merge_list
from slowmask.geometry import world_size

from ..registry import DATASET_REGISTRY, build_dataset
from ..index_samplers import ResumableOrder
from ..transforms import ClipTransform

logger = logging.getLogger(__name__)


def order_generator(seed: int, *numbers: int) -> torch.Generator:
    """A CPU generator seeded from `seed` and `numbers` (nearby tuples give unrelated seeds)."""
    text = "/".join(str(n) for n in (seed, *numbers))
    digest = hashlib.blake2b(f"mixed/{text}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))


class MixedBatchSampler(ResumableOrder, Sampler[List[int]]):
    """Batches of indices into the concatenation of several datasets, each batch from one.

    Dataset d (items offsets[d] .. offsets[d] + sizes[d] - 1 of the concatenation) gives
    this rank `sizes[d] // world_size` items per pass (its share of a (seed, epoch, d,
    pass) shuffle: positions rank, rank + world_size, ...), cut into batches of
    `batch_sizes[d]`; the epoch holds int(repeat_factors[d] * those batches), taking
    further passes when the factor exceeds 1. The order of datasets is a (seed, epoch)
    shuffle of all the epoch's batches, the same on every rank.

    Args:
        sizes: items of each dataset.
        batch_sizes: items per batch of each dataset, in this process.
        repeat_factors: multiplier of each dataset's batches per epoch (> 0).
        seed: base seed of the orders.
        rank, world_size: this process and the number of processes.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_sizes: Sequence[int],
        repeat_factors: Sequence[float],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not len(sizes) == len(batch_sizes) == len(repeat_factors) or not sizes:
            raise ValueError(
                f"need one size, batch size and repeat factor per dataset, got {list(sizes)}, "
                f"{list(batch_sizes)}, {list(repeat_factors)}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} lies outside [0, world size {world_size})")
        if any(f <= 0 for f in repeat_factors):
            raise ValueError(f"repeat factors must be > 0, got {list(repeat_factors)}")
        self.sizes, self.batch_sizes = list(sizes), list(batch_sizes)
        self.repeat_factors = list(repeat_factors)
        self.offsets = [sum(self.sizes[:d]) for d in range(len(self.sizes))]
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.share = [size // world_size for size in self.sizes]
        self.batches_per_pass = [share // batch for share, batch in zip(self.share, self.batch_sizes)]
        empty = [d for d, n in enumerate(self.batches_per_pass) if n == 0]
        if empty:
            raise ValueError(
                f"datasets {empty} have fewer items per process ({[self.share[d] for d in empty]}) than one "
                f"batch ({[self.batch_sizes[d] for d in empty]}); lower their TRAIN.BATCH_SIZE or add data"
            )
        self.batches = [int(f * n) for f, n in zip(self.repeat_factors, self.batches_per_pass)]

    def epoch_length(self) -> int:
        """Batches of an epoch."""
        return sum(self.batches)

    def schedule(self) -> List[int]:
        """The dataset of every batch of the epoch, in order; the same on every rank."""
        order = torch.cat([torch.full((n,), d, dtype=torch.long) for d, n in enumerate(self.batches)])
        return order[torch.randperm(len(order), generator=order_generator(self.seed, self.epoch))].tolist()

    def dataset_batches(self, d: int) -> List[List[int]]:
        """This rank's batches of dataset d this epoch, as indices of the concatenation."""
        batch, per_pass = self.batch_sizes[d], self.batches_per_pass[d]
        out: List[List[int]] = []
        for pass_index in range((self.batches[d] + per_pass - 1) // per_pass):
            order = torch.randperm(self.sizes[d], generator=order_generator(self.seed, self.epoch, d, pass_index))
            mine = (order[self.rank :: self.world_size][: per_pass * batch] + self.offsets[d]).tolist()
            out.extend(mine[i : i + batch] for i in range(0, len(mine), batch))
        return out[: self.batches[d]]

    def __iter__(self) -> Iterator[List[int]]:
        batches = [iter(self.dataset_batches(d)) for d in range(len(self.sizes))]
        for position, d in enumerate(self.schedule()):
            batch = next(batches[d])
            if position >= self.start:
                yield batch


def exact_counts(weights: Sequence[float], total: int) -> List[int]:
    """`total` split in proportion to `weights` (largest remainders): counts summing to
    `total`, each within 1 of weight_d / sum(weights) * total."""
    shares = [w / sum(weights) * total for w in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda d: counts[d] - shares[d])
    for d in by_remainder[: total - sum(counts)]:
        counts[d] += 1
    return counts


class WeightedMixSampler(ResumableOrder, Sampler[List[int]]):
    """Batches of indices into the concatenation of several datasets, the items of each
    batch drawn from every dataset by weight (V-JEPA 2 mixes K710, SSv2 and HowTo100M
    0.335 / 0.100 / 0.565), so one batch holds clips of all of them.

    An epoch of this rank is `num_batches` batches of `batch_size` items (default: its
    share of all the datasets' items, sum(sizes[d] // world_size) // batch_size). Of its
    items, dataset d gives exactly its weight's share (largest remainders, within one
    item), at places of a (seed, epoch, rank) shuffle; its items are this rank's share of
    (seed, epoch, d, pass) shuffles (positions rank, rank + world_size, ...), taking
    further passes when its weight asks for more items than it has. Ranks read
    different items of a pass; the clips of every dataset must have one shape.

    Args:
        sizes: items of each dataset.
        batch_size: items per batch in this process.
        weights: sampling weight of each dataset (> 0; normalized to sum 1).
        seed: base seed of the orders.
        rank, world_size: this process and the number of processes.
        num_batches: batches per epoch, or None for the default above.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        weights: Sequence[float],
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_batches: Optional[int] = None,
    ) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError(f"need one size and one weight per dataset, got {list(sizes)} and {list(weights)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} lies outside [0, world size {world_size})")
        if any(not w > 0 for w in weights):
            raise ValueError(f"MULTI_DATASET.WEIGHTS must all be > 0, got {list(weights)}")
        self.sizes, self.batch_size = list(sizes), batch_size
        self.weights = [w / sum(weights) for w in weights]
        self.offsets = [sum(self.sizes[:d]) for d in range(len(self.sizes))]
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.share = [size // world_size for size in self.sizes]
        empty = [d for d, share in enumerate(self.share) if share == 0]
        if empty:
            raise ValueError(f"datasets {empty} have no item for each of the {world_size} processes; add data")
        self.num_batches = sum(self.share) // batch_size if num_batches is None else num_batches
        if self.num_batches < 1:
            raise ValueError(
                f"the datasets' {sum(self.share)} items per process make no batch of {batch_size}; "
                "lower TRAIN.BATCH_SIZE or add data"
            )
        self.items_per_dataset = exact_counts(self.weights, self.num_batches * batch_size)

    def epoch_length(self) -> int:
        """Batches of an epoch."""
        return self.num_batches

    def sources(self) -> List[int]:
        """The dataset of every item of this rank's epoch, in order."""
        order = torch.cat([torch.full((n,), d, dtype=torch.long) for d, n in enumerate(self.items_per_dataset)])
        generator = order_generator(self.seed, self.epoch, -1, self.rank)
        return order[torch.randperm(len(order), generator=generator)].tolist()

    def dataset_items(self, d: int) -> List[int]:
        """This rank's items of dataset d this epoch, as indices of the concatenation."""
        count, share = self.items_per_dataset[d], self.share[d]
        out: List[int] = []
        for pass_index in range((count + share - 1) // share):
            order = torch.randperm(self.sizes[d], generator=order_generator(self.seed, self.epoch, d, pass_index))
            out.extend((order[self.rank :: self.world_size][:share] + self.offsets[d]).tolist())
        return out[:count]

    def __iter__(self) -> Iterator[List[int]]:
        streams = [iter(self.dataset_items(d)) for d in range(len(self.sizes))]
        items = [next(streams[d]) for d in self.sources()]
        size = self.batch_size
        for position in range(self.start, self.num_batches):
            yield items[position * size : (position + 1) * size]


class FrameRepeat:
    """`transform`'s clip (3, T, S, S) repeated `times` times along T: an image (T = 1)
    becomes a clip of `times` identical frames, so the video patch embedding (temporal
    kernel `times`) embeds it (omnivore's PadIm2Video with pad_type "repeat"). Done in the
    item, not the model, so the pixel target of an image token is the image itself and
    the model sees one kind of input."""

    def __init__(self, transform: ClipTransform, times: int) -> None:
        if times < 1:
            raise ValueError(f"frames are repeated at least once, got {times}")
        self.transform, self.times = transform, times
        self.num_views = transform.num_views

    def __call__(self, frames: torch.Tensor, generator: torch.Generator, spatial_index: int = 0) -> torch.Tensor:
        clip = self.transform(frames, generator, spatial_index)
        return clip.repeat_interleave(self.times, dim=1)


@DATASET_REGISTRY.register(name="mixed")
class MixedDataset(Dataset):
    """The concatenation of `parts`: item `offsets[d] + i` is item i of part d, its meta
    naming the part (`meta["dataset"]`). Batch it with `batch_sampler`, whose batches
    each hold items of one part (MixedBatchSampler) or of all of them (WeightedMixSampler).

    Args:
        parts: the datasets (items as `ClipDataset`'s).
        names: one name per part (for logs and `meta["dataset"]`).
        batch_sampler: a MixedBatchSampler or WeightedMixSampler over the parts' sizes, or None.
    """

    def __init__(
        self, parts: Sequence[Dataset], names: Sequence[str], batch_sampler: Optional[Sampler[List[int]]] = None
    ) -> None:
        if len(parts) != len(names) or not parts:
            raise ValueError(f"need one name per part and at least one part, got {len(parts)} and {len(names)}")
        self.parts, self.names = list(parts), list(names)
        self.offsets = [sum(len(p) for p in self.parts[:d]) for d in range(len(self.parts))]
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def part_of(self, index: int) -> int:
        """The part holding item `index` of the concatenation."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        return max(d for d, offset in enumerate(self.offsets) if offset <= index)

    def __getitem__(self, index: int) -> dict:
        d = self.part_of(index)
        item = self.parts[d][index - self.offsets[d]]
        item["meta"] = {**item["meta"], "dataset": self.names[d]}
        return item

    @classmethod
    def from_config(cls, cfg: CfgNode, split: str) -> "MixedDataset":
        """The datasets of MULTI_DATASET.OVERRIDES (training only): with MULTI_DATASET.WEIGHTS
        their items mixed inside each batch of TRAIN.BATCH_SIZE (WeightedMixSampler); else
        their batches mixed by MULTI_DATASET.REPEAT_FACTORS (one per dataset; [] for 1
        each), each part's TRAIN.BATCH_SIZE split over the processes."""
        if split != "train":
            raise ValueError(
                f"TRAIN.DATASET mixed trains only; split {split!r} needs one dataset: set TEST.DATASET"
            )
        part_cfgs = [part_config(cfg, i) for i in range(len(cfg.MULTI_DATASET.OVERRIDES))]
        if not part_cfgs:
            raise ValueError("TRAIN.DATASET mixed needs MULTI_DATASET.OVERRIDES: one KEY VALUE list per dataset")
        if cfg.MULTI_DATASET.WEIGHTS:
            check_weighted_parts(cfg, part_cfgs)
        factors = list(cfg.MULTI_DATASET.REPEAT_FACTORS) or [1.0] * len(part_cfgs)
        if len(factors) != len(part_cfgs):
            raise ValueError(
                f"MULTI_DATASET.REPEAT_FACTORS has {len(factors)} values for {len(part_cfgs)} datasets; give one each"
            )
        parts = [build_part(part) for part in part_cfgs]
        names = [f"{i}:{part.TRAIN.DATASET}" for i, part in enumerate(part_cfgs)]
        distributed = dist.is_available() and dist.is_initialized()
        job = dict(
            seed=cfg.RNG_SEED,
            rank=dist.get_rank() if distributed else 0,
            world_size=dist.get_world_size() if distributed else 1,
        )
        processes = world_size(cfg.NUM_GPUS, cfg.NUM_SHARDS)
        if cfg.MULTI_DATASET.WEIGHTS:
            weighted = WeightedMixSampler(
                [len(p) for p in parts], max(1, cfg.TRAIN.BATCH_SIZE // processes), cfg.MULTI_DATASET.WEIGHTS, **job
            )
            for name, part, weight, items in zip(names, parts, weighted.weights, weighted.items_per_dataset):
                logger.info("mixed dataset %s: %d items, weight %.3f, %d items per epoch in this process",
                            name, len(part), weight, items)
            return cls(parts, names, weighted)
        sampler = MixedBatchSampler(
            [len(p) for p in parts],
            [max(1, part.TRAIN.BATCH_SIZE // processes) for part in part_cfgs],
            factors,
            **job,
        )
        for name, part, batches in zip(names, parts, sampler.batches):
            logger.info("mixed dataset %s: %d items, %d batches per epoch", name, len(part), batches)
        return cls(parts, names, sampler)


def check_weighted_parts(cfg: CfgNode, part_cfgs: Sequence[CfgNode]) -> None:
    """ConfigError unless MULTI_DATASET.WEIGHTS gives one weight per dataset without
    REPEAT_FACTORS, and every dataset's clips and masks have the run's shape and batch
    (their items are stacked into one batch)."""
    weights, count = list(cfg.MULTI_DATASET.WEIGHTS), len(part_cfgs)
    if len(weights) != count:
        raise ConfigError(f"MULTI_DATASET.WEIGHTS has {len(weights)} values for {count} datasets; give one each")
    if cfg.MULTI_DATASET.REPEAT_FACTORS:
        raise ConfigError(
            "MULTI_DATASET.WEIGHTS mixes items inside each batch and REPEAT_FACTORS gives each batch one dataset: "
            "set one of them ([] for the other)"
        )

    def shape(part: CfgNode) -> tuple:
        frames = part.DATA.NUM_FRAMES * part.MULTI_DATASET.REPEAT_FRAMES
        return frames, part.DATA.TRAIN_CROP_SIZE, tuple(part.AUG.MASK_WINDOW_SIZE), part.TRAIN.BATCH_SIZE

    for i, part in enumerate(part_cfgs):
        if shape(part) != shape(cfg):
            raise ConfigError(
                f"MULTI_DATASET.OVERRIDES[{i}] changes the clip or batch (frames x MULTI_DATASET.REPEAT_FRAMES, "
                f"DATA.TRAIN_CROP_SIZE, AUG.MASK_WINDOW_SIZE, TRAIN.BATCH_SIZE: {list(shape(part))} instead of "
                f"{list(shape(cfg))}); MULTI_DATASET.WEIGHTS stacks every dataset's items in one batch"
            )


def part_config(cfg: CfgNode, i: int) -> CfgNode:
    """The config of dataset i: `cfg` with MULTI_DATASET.OVERRIDES[i] merged on; its clip
    as the model sees it (DATA.NUM_FRAMES x MULTI_DATASET.REPEAT_FRAMES frames) must fill
    whole temporal patches and mask units."""
    source = f"MULTI_DATASET.OVERRIDES[{i}]"
    part = cfg.clone()
    part.defrost()
    part.MULTI_DATASET.OVERRIDES = []
    try:
        merge_list(part, list(cfg.MULTI_DATASET.OVERRIDES[i]))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error
    if part.TRAIN.DATASET.lower() == "mixed":
        raise ConfigError(f"{source} must name one dataset in TRAIN.DATASET, not mixed")
    frames = part.DATA.NUM_FRAMES * part.MULTI_DATASET.REPEAT_FRAMES
    stride = 1 if part.MVIT.PATCH_2D else part.MVIT.PATCH_STRIDE[0]
    mask_t = part.AUG.MASK_WINDOW_SIZE[0]
    if frames % stride or (frames // stride) % mask_t:
        raise ConfigError(
            f"{source}: clips of DATA.NUM_FRAMES {part.DATA.NUM_FRAMES} x MULTI_DATASET.REPEAT_FRAMES "
            f"{part.MULTI_DATASET.REPEAT_FRAMES} frames do not fill whole patches of MVIT.PATCH_STRIDE {stride} "
            f"frames and mask units of AUG.MASK_WINDOW_SIZE {mask_t} tokens; set REPEAT_FRAMES to the patch's frames"
        )
    part.freeze()
    return part


def build_part(part: CfgNode) -> Dataset:
    """The training dataset of a part's config, its clips' frames repeated
    MULTI_DATASET.REPEAT_FRAMES times (2 for images with a 2-frame patch)."""
    dataset = build_dataset(part, "train")
    if part.MULTI_DATASET.REPEAT_FRAMES > 1:
        if not isinstance(getattr(dataset, "transform", None), ClipTransform):
            raise ValueError(
                f"MULTI_DATASET.REPEAT_FRAMES needs a dataset with a clip transform (a ClipDataset); "
                f"{type(dataset).__name__} has none: leave REPEAT_FRAMES 1 for it"
            )
        dataset.transform = FrameRepeat(dataset.transform, part.MULTI_DATASET.REPEAT_FRAMES)
    return dataset

