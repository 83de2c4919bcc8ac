"""Batching dataset items, with repeated samples flattened into the batch, and moving
a batch to the device that trains on it."""

from typing import Any, Callable, Dict, List

import torch


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _labels(labels: list) -> torch.Tensor:
    """Class indices as int64 (B,); multi-hot label vectors stacked as float (B, num_classes)."""
    if isinstance(labels[0], torch.Tensor):
        return torch.stack(labels).float()
    return torch.as_tensor(labels, dtype=torch.long)


def _stack(tensors: List[torch.Tensor]) -> torch.Tensor:
    """torch.stack; in a loader worker, straight into shared memory, which the batch
    would otherwise be copied to on its way to the main process."""
    if torch.utils.data.get_worker_info() is None:
        return torch.stack(tensors)
    first = tensors[0]
    storage = first._typed_storage()._new_shared(len(tensors) * first.numel(), device=first.device)
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def collate_clips(items: List[dict]) -> dict:
    """Items (see kinetics.Kinetics) -> one batch dict.

    An item with a list of NUM_SAMPLE clips gives NUM_SAMPLE rows; its label, index and
    meta are repeated for each. With B rows in all:

        clip   float32 (B, 3, T, H, W), normalized; uint8 from a transform built
               with normalize=False (ClipsToDevice finishes it)
        mask   bool (B, t, h, w), when the items have masks
        label  int64 (B,); float (B, num_classes) for multi-hot labels (multi-label data)
        index  int64 (B,)
        meta   list of B dicts
    """
    clips, masks, labels, indices, metas = [], [], [], [], []
    with_mask = "mask" in items[0]
    for item in items:
        if ("mask" in item) != with_mask:
            raise ValueError("cannot batch items with and without a mask")
        item_clips = _as_list(item["clip"])
        clips.extend(item_clips)
        if with_mask:
            masks.extend(_as_list(item["mask"]))
        labels.extend([item["label"]] * len(item_clips))
        indices.extend([item["index"]] * len(item_clips))
        metas.extend([item["meta"]] * len(item_clips))
    batch = {
        "clip": _stack(clips),
        "label": _labels(labels),
        "index": torch.as_tensor(indices, dtype=torch.long),
        "meta": metas,
    }
    if with_mask:
        batch["mask"] = torch.stack(masks).bool()
    return batch


def _moved(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
        for key, value in batch.items()
    }


def to_device(batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
    """Move the batch's tensors to `device` (non-blocking from pinned memory); a uint8
    clip is refused, as the model would get it unnormalized."""
    clip = batch.get("clip")
    if torch.is_tensor(clip) and clip.dtype == torch.uint8:
        raise TypeError(
            "the batch's clip is uint8, not normalized (DATA.NORMALIZE_ON_DEVICE): move it with the "
            "transfer that normalizes it, build_batch_transfer(cfg) (TrainStep's `transfer`)"
        )
    return _moved(batch, device)


class ClipsToDevice:
    """(batch, device) -> the batch on `device`, its uint8 clip normalized there by
    `normalize` (a transforms.ClipNormalizer): the clip crosses as uint8, a quarter of
    the bytes of float32, and from pinned memory without making the host wait."""

    def __init__(self, normalize: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.normalize = normalize

    def __call__(self, batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
        moved = _moved(batch, device)
        moved["clip"] = self.normalize(moved["clip"])
        return moved
