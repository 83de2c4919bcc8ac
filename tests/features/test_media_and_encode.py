"""Inputs of feature extraction: videos and images as clips; tokens from both model kinds."""

import numpy as np
import pytest
import torch
from PIL import Image

from slowmask.data import CenterClipSampler, EvalTransform, open_video
from slowmask.features import FeatureStore, MediaClips, collate_media, encoder_tokens, feature_key
from slowmask.features.encode import TokenEncoder, without_unused


def dataset(paths):
    return MediaClips(paths, open_video, CenterClipSampler(4, 2), EvalTransform(32, 32, [0.5] * 3, [0.25] * 3), 4)


def test_an_image_is_a_still_clip_and_an_unreadable_file_is_reported(tmp_path):
    image = tmp_path / "cat.png"
    Image.fromarray(np.full((40, 60, 3), 200, dtype=np.uint8)).save(image)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    batch = collate_media([dataset([str(image), str(broken)])[i] for i in range(2)])
    assert batch["clip"].shape == (1, 3, 4, 32, 32)
    assert torch.allclose(batch["clip"][0, :, 0], batch["clip"][0, :, 3])
    assert batch["path"] == [str(image)] and batch["failed"][0][0] == str(broken)


def test_tokens_of_an_encoder_or_a_classifier_and_a_clear_error_otherwise():
    class Encoder(torch.nn.Module):
        def forward(self, x, mask):
            assert mask is None
            return [torch.zeros(x.shape[0], 6, 3), torch.ones(x.shape[0], 4, 5)], [(1, 2, 3), (1, 2, 2)]

    class Pretrainer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()

    class Classifier(torch.nn.Module):
        num_prefix = 1

        def forward_features(self, x):
            return torch.arange(5.0).view(1, 5, 1).expand(x.shape[0], 5, 2)

    x = torch.zeros(2, 3, 4, 8, 8)
    assert encoder_tokens(Pretrainer(), x).shape == (2, 4, 5)
    assert encoder_tokens(Classifier(), x)[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(TypeError, match="cannot take features"):
        encoder_tokens(torch.nn.Linear(2, 2), x)


def test_store_keys_keep_same_named_files_apart(tmp_path):
    assert feature_key("/a/clip.mp4") != feature_key("/b/clip.mp4")
    store = FeatureStore(str(tmp_path))
    store.write("/a/clip.mp4", np.ones(3))
    assert store.is_done("/a/clip.mp4") and not store.is_done("/b/clip.mp4")
    rows, missing = store.write_index(["/a/clip.mp4", "/b/clip.mp4"], {"/b/clip.mp4": "gone"})
    assert (rows, missing) == (1, ["/b/clip.mp4"])
    assert np.load(tmp_path / "features.npy").shape == (1, 3)
    assert store.write_index(["/c/other.mp4"], {"/c/other.mp4": "gone"}) == (0, ["/c/other.mp4"])
    assert not (tmp_path / "features.npy").exists()  # no rows of another list left behind


def test_without_unused_strips_what_the_forward_never_reads_and_checks_the_output():
    class Classifier(torch.nn.Module):
        num_prefix = 0

        def __init__(self):
            super().__init__()
            self.proj, self.head = torch.nn.Linear(2, 3), torch.nn.Linear(3, 4)
            self.register_buffer("counts", torch.zeros(4))

        def forward_features(self, x):
            return self.proj(x.flatten(2).transpose(1, 2)[..., :2])

    encoder, unused = without_unused(TokenEncoder(Classifier()).eval(), torch.randn(2, 3, 1, 2, 2))
    assert unused == ["model.counts", "model.head.bias", "model.head.weight"]
    assert not hasattr(encoder.model.head, "weight") and hasattr(encoder.model.proj, "weight")
    assert encoder(torch.randn(5, 3, 1, 2, 2)).shape == (5, 4, 3)

    class ReadsOnlyAShape(torch.nn.Module):
        num_prefix = 0

        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.zeros(7))

        def forward_features(self, x):  # the table's shape, not its values: the program holds a constant 7
            return x.flatten(2).transpose(1, 2) + (self.table.shape[0] if hasattr(self, "table") else 0)

    with pytest.raises(RuntimeError, match=r"TokenEncoder gives other outputs without model.table \(largest "
                                           r"difference 7.00e\+00\): they are read after all"):
        without_unused(TokenEncoder(ReadsOnlyAShape()), torch.randn(1, 3, 1, 2, 2))
