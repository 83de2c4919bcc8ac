"""tools/make_demo_images.py writes class folders the image recipes read."""

from slowmask.data import list_image_folder
from tool_scripts import load_tool


def test_demo_images(tmp_path):
    load_tool("make_demo_images").main([str(tmp_path), "--images-per-class", "4", "--size", "32"])
    train = list_image_folder(str(tmp_path / "train"))
    assert len(train) == 8 and {label for _, label in train} == {0, 1}
    assert len(list_image_folder(str(tmp_path / "val"))) == 2
