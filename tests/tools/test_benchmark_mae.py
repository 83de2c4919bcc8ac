"""tools/benchmark_mae.py on the tiny MAE recipe: both models run a step and report times;
tools/make_demo_images.py writes class folders the image recipes read."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

import benchmark_mae  # noqa: E402
import make_demo_images  # noqa: E402

from slowmask.data import list_image_folder  # noqa: E402


def test_sparse_vs_dense_on_the_tiny_recipe():
    result = benchmark_mae.sparse_vs_dense(
        os.path.join(REPO, "configs", "demo", "ViT_tiny_MAE_PT.yaml"), frames=8, size=64, batch=2, ratio=0.75, steps=1,
        fused_adamw=True,
    )
    assert result["tokens"] == 4 * 4 * 4
    for key in ("sparse_s", "dense_s", "sparse_fwd_bwd_s", "dense_fwd_bwd_s", "sparse_cpu_s", "dense_cpu_s"):
        assert result[key] > 0
    assert result["speedup"] == result["dense_s"] / result["sparse_s"]


def test_demo_images(tmp_path):
    make_demo_images.main([str(tmp_path), "--images-per-class", "4", "--size", "32"])
    train = list_image_folder(str(tmp_path / "train"))
    assert len(train) == 8 and {label for _, label in train} == {0, 1}
    assert len(list_image_folder(str(tmp_path / "val"))) == 2
