"""Images as one-frame clips: class folders and "path label" lists, corrupt files,
and the same model code for an image folder (T = 1) and a video list (T = 16)."""

import logging
import os

import pytest
import torch
from PIL import Image

from slowmask.config import get_cfg
from slowmask.data import ImageFolder, build_dataset, collate_clips, list_image_folder, open_image
from slowmask.data.decoders.video import DecodeError
from slowmask.methods import build_model

IMAGE_SIZE = (48, 40)  # (width, height)


def _write_images(root, classes=("cat", "dog"), per_class=3):
    for label, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            colour = (40 * i, 100 * label, 200)
            suffix = ".png" if i % 2 else ".JPEG"
            Image.new("RGB", IMAGE_SIZE, colour).save(root / name / f"{i}{suffix}")


@pytest.fixture
def image_dir(tmp_path):
    """train/ with 2 class folders of 3 images each, one extra corrupt JPEG, a stray text file."""
    _write_images(tmp_path / "train")
    (tmp_path / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def _image_cfg(data_dir, *overrides):
    cfg = get_cfg()
    cfg.merge_from_list(
        [
            "TRAIN.DATASET", "imagefolder",
            "DATA.PATH_TO_DATA_DIR", str(data_dir),
            "DATA.NUM_FRAMES", "1",
            "DATA.TRAIN_CROP_SIZE", "32",
            "DATA.DECODING_SHORT_SIZE", "0",
            "DATA.TRAIN_JITTER_SCALES_RELATIVE", "[0.5, 1.0]",
            *overrides,
        ]
    )
    return cfg


def test_class_folders_give_sorted_labels(image_dir):
    images = list_image_folder(str(image_dir / "train"))
    assert len(images) == 7 and {label for _, label in images} == {0, 1}
    assert all(os.path.basename(os.path.dirname(path)) == ("cat", "dog")[label] for path, label in images)


def test_image_is_a_one_frame_video(image_dir):
    with open_image(str(image_dir / "train" / "cat" / "0.JPEG")) as video:
        assert video.num_frames == 1
        frames = video.get_frames([0, 0])
    assert frames.shape == (2, 40, 48, 3) and frames.dtype == torch.uint8


def test_items_are_one_frame_clips_with_masks(image_dir):
    cfg = _image_cfg(image_dir, "MASK.ENABLE", "True", "AUG.MASK_RATIO", "0.5", "AUG.MASK_TYPE", "block",
                     "AUG.MASK_WINDOW_SIZE", "[1, 4, 4]")
    dataset = build_dataset(cfg, "train")
    assert isinstance(dataset, ImageFolder) and len(dataset) == 7
    item = dataset[0]
    assert item["clip"].shape == (3, 1, 32, 32) and item["mask"].shape == (1, 4, 4)


def test_corrupt_jpeg_is_a_counted_logged_skip(image_dir, caplog):
    dataset = ImageFolder.from_config(_image_cfg(image_dir), "train")
    broken = [i for i, (path, _) in enumerate(dataset.videos) if path.endswith("broken.jpg")][0]
    with caplog.at_level(logging.WARNING):
        item = dataset[broken]
    assert item["meta"]["skipped"] == [dataset.videos[broken][0]] and item["index"] != broken
    assert dataset.skipped == [dataset.videos[broken][0]]
    assert "broken.jpg" in caplog.text
    with pytest.raises(DecodeError, match="cannot read image .*broken.jpg"):
        open_image(dataset.videos[broken][0])


def test_path_label_list_of_images(image_dir):
    paths = [image_dir / "train" / "cat" / "0.JPEG", image_dir / "train" / "dog" / "1.png"]
    (image_dir / "val.csv").write_text("".join(f"{p} {label}\n" for label, p in enumerate(paths)))
    dataset = ImageFolder.from_config(_image_cfg(image_dir, "DATA.TEST_CROP_SIZE", "32"), "val")
    assert [label for _, label in dataset.videos] == [0, 1]
    assert dataset[1]["clip"].shape == (3, 1, 32, 32)


def test_video_length_clips_are_refused(image_dir):
    with pytest.raises(ValueError, match="set DATA.NUM_FRAMES 1, got 8"):
        ImageFolder.from_config(_image_cfg(image_dir, "DATA.NUM_FRAMES", "8"), "train")


def test_folder_without_images(tmp_path):
    os.makedirs(tmp_path / "train" / "empty")
    with pytest.raises(ValueError, match="no images .* in class folders under"):
        list_image_folder(str(tmp_path / "train"))
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        list_image_folder(str(tmp_path / "missing"))


# The same MAE composition for both: a ViT whose patch is 16x16 (2-D for images, 2x16x16 for video).
MAE_KEYS = [
    "MASK.ENABLE", "True", "MASK.MAE_ON", "True", "MASK.PRETRAIN_DEPTH", "[1]",
    "MASK.HEAD_TYPE", "separate_xformer", "MASK.DECODER_DEPTH", "1", "MASK.DECODER_EMBED_DIM", "64",
    "MVIT.EMBED_DIM", "32", "MVIT.NUM_HEADS", "2", "MVIT.DEPTH", "2", "MVIT.DROPPATH_RATE", "0.0",
    "MODEL.MODEL_NAME", "MAE", "MODEL.LOSS_FUNC", "mse", "AUG.MASK_TYPE", "random", "AUG.MASK_RATIO", "0.75",
    "DATA.TRAIN_CROP_SIZE", "32",
]


def test_image_folder_and_video_list_feed_the_same_model_code(image_dir, demo_data_dir):
    image_cfg = _image_cfg(image_dir, *MAE_KEYS, "MVIT.PATCH_2D", "True", "MVIT.PATCH_KERNEL", "[16, 16]",
                           "MVIT.PATCH_STRIDE", "[16, 16]", "MVIT.PATCH_PADDING", "[0, 0]",
                           "AUG.MASK_WINDOW_SIZE", "[1, 2, 2]")
    video_cfg = get_cfg()
    video_cfg.merge_from_list(
        [*MAE_KEYS, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "DATA.NUM_FRAMES", "16", "DATA.SAMPLING_RATE", "2",
         "DATA.DECODING_SHORT_SIZE", "40", "MVIT.PATCH_KERNEL", "[2, 16, 16]", "MVIT.PATCH_STRIDE", "[2, 16, 16]",
         "MVIT.PATCH_PADDING", "[0, 0, 0]", "AUG.MASK_WINDOW_SIZE", "[8, 2, 2]"]
    )
    # Masked tokens per clip: 75 % of the 1x2x2 and 8x2x2 token grids.
    for cfg, frames, masked in ((image_cfg, 1, 3), (video_cfg, 16, 24)):
        dataset = build_dataset(cfg, "train")
        batch = collate_clips([dataset[0], dataset[1]])
        assert batch["clip"].shape == (2, 3, frames, 32, 32)
        model = build_model(cfg)
        out = model(batch["clip"], batch["mask"])
        out["loss"].backward()
        assert type(model).__name__ == "MAE" and type(model.encoder).__name__ == "MAEEncoder"
        assert torch.isfinite(out["loss"]) and out["pred"].shape[0] == 2 * masked


def test_every_image_format_is_read_alike_by_the_image_folder_and_the_feature_extractor(tmp_path):
    from slowmask.features.media import media_inputs

    names = ["a.jpg", "b.JPEG", "c.png", "d.bmp", "e.webp"]
    for name in names:
        os.makedirs(tmp_path / "cls", exist_ok=True)
        Image.new("RGB", IMAGE_SIZE, (10, 20, 30)).save(tmp_path / "cls" / name)
    (tmp_path / "cls" / "f.gif").write_bytes(b"GIF89a")  # not an image format of either
    listed = [os.path.basename(path) for path, _ in list_image_folder(str(tmp_path))]
    assert listed == names
    assert [os.path.basename(path) for path in media_inputs(str(tmp_path))] == names
    assert open_image(str(tmp_path / "cls" / "e.webp")).get_frames([0]).shape == (1, 40, 48, 3)
