"""The loader's fast paths give what the plain ones give: normalization in one
allocation, batches collated straight into shared memory in a worker."""

import torch
import torchvision.transforms.v2.functional as F
from torch.utils.data import DataLoader, Dataset

from slowmask.data import collate_clips
from slowmask.data.transforms import to_normalized_float

MEAN, STD = [0.45, 0.4, 0.35], [0.225, 0.25, 0.2]


def test_normalized_float_equals_torchvision_and_is_laid_out_channel_major():
    clip = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = to_normalized_float(clip, MEAN, STD)
    expected = F.normalize(F.to_dtype(clip, torch.float32, scale=True), MEAN, STD)
    assert out.shape == (5, 3, 16, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    assert out.permute(1, 0, 2, 3).is_contiguous()


class TwoClips(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        clips = [torch.full((3, 2, 4, 4), float(index)), torch.full((3, 2, 4, 4), index + 0.5)]
        return {"clip": clips, "label": index, "index": index, "meta": {}}


def test_worker_batches_equal_main_process_batches():
    batches = [
        next(iter(DataLoader(TwoClips(), batch_size=2, num_workers=workers, collate_fn=collate_clips)))
        for workers in (0, 1)
    ]
    assert torch.equal(batches[0]["clip"], batches[1]["clip"])
    assert batches[1]["clip"][:, 0, 0, 0, 0].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert batches[1]["clip"].is_shared()
