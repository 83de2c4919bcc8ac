"""python -m slowmask.collect_env: the versions a bug report needs."""

import torch

from slowmask.collect_env import collect_env, format_env


def test_the_report_names_python_torch_decoders_codecs_and_gpus():
    rows = dict(collect_env())
    assert rows["torch"] == torch.__version__
    for name in ("Python", "torchvision", "av", "decord", "PyAV FFmpeg libraries", "codec h264", "ffmpeg program"):
        assert name in rows, name
    assert "GPUs" in rows or "GPU 0" in rows
    assert "decode" in rows["codec h264"]
    assert format_env([("a", "1"), ("long name", "2")]) == "a          1\nlong name  2"

