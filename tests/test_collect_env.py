"""python -m slowmask.collect_env: the versions a bug report needs, each as the library
or the platform reports it."""

import platform
import shutil
import sys

import av
import torch
import torchvision

from slowmask.collect_env import VIDEO_CODECS, collect_env, format_env


def test_the_report_gives_the_versions_that_python_torch_and_pyav_report():
    rows = dict(collect_env())
    assert rows["Python"] == sys.version.replace("\n", " ") and rows["platform"] == platform.platform()
    assert rows["torch"] == torch.__version__ and rows["torchvision"] == torchvision.__version__
    assert rows["av"] == av.__version__ and rows["torch CUDA build"] == str(torch.version.cuda)
    if torch.cuda.is_available():
        assert rows["GPU 0"].startswith(torch.cuda.get_device_name(0) + ", ")
    else:
        assert rows["GPUs"] == "none visible to torch"
    libraries = [f"{name} {'.'.join(map(str, version))}" for name, version in sorted(av.library_versions.items())]
    assert rows["PyAV FFmpeg libraries"] == ", ".join(libraries)
    assert [name for name in rows if name.startswith("codec ")] == [f"codec {codec}" for codec in VIDEO_CODECS]
    assert rows["codec h264"] in ("decode", "decode + encode")  # every FFmpeg build decodes H.264
    program = shutil.which("ffmpeg")
    if program is None:
        assert rows["ffmpeg program"].startswith("not on PATH")
    else:
        assert rows["ffmpeg program"].startswith(f"{program}: ")


def test_the_rows_are_aligned_on_the_longest_name():
    assert format_env([("a", "1"), ("long name", "2")]) == "a          1\nlong name  2"
