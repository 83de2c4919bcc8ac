"""The versions a bug report needs: `python -m slowmask.collect_env` prints them.

Python, the platform, torch (its CUDA and cuDNN builds), torchvision, PyAV with its
FFmpeg libraries and which common video codecs it can decode and encode, decord, the
ffmpeg program, the other dependencies, and the GPUs torch sees.
"""

import importlib
import platform
import shutil
import subprocess
import sys
from typing import List, Tuple

# Codecs of the usual video downloads (Kinetics: H.264, VP9, AV1) and of our encoders.
VIDEO_CODECS = ("h264", "hevc", "vp9", "av1", "mpeg4", "libx264")
PACKAGES = ("torchvision", "av", "decord", "pytorchvideo", "fvcore", "iopath", "numpy", "PIL", "tqdm", "tensorboard")


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a broken install must not hide the rest of the report
        return f"not importable ({type(error).__name__}: {error})"
    return str(getattr(module, "__version__", "installed, version unknown"))


def torch_rows() -> List[Tuple[str, str]]:
    import torch

    rows = [("torch", torch.__version__), ("torch CUDA build", str(torch.version.cuda)),
            ("cuDNN", str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            rows.append((f"GPU {index}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                                         f"capability {props.major}.{props.minor}"))
    else:
        rows.append(("GPUs", "none visible to torch"))
    return rows


def pyav_rows() -> List[Tuple[str, str]]:
    try:
        import av
    except ImportError as error:
        return [("PyAV", f"not importable ({error})")]
    libraries = ", ".join(f"{name} {'.'.join(map(str, version))}" for name, version in sorted(av.library_versions.items()))
    rows = [("PyAV FFmpeg libraries", libraries)]
    for codec in VIDEO_CODECS:
        modes = []
        for mode, word in (("r", "decode"), ("w", "encode")):
            try:
                av.codec.Codec(codec, mode)
                modes.append(word)
            except Exception:  # PyAV raises different types for an unknown codec across versions
                continue
        rows.append((f"codec {codec}", " + ".join(modes) or "unavailable"))
    return rows


def ffmpeg_row() -> Tuple[str, str]:
    program = shutil.which("ffmpeg")
    if program is None:
        return "ffmpeg program", "not on PATH (slowmask does not need it; PyAV brings its own libraries)"
    try:
        first = subprocess.run([program, "-version"], capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as error:
        return "ffmpeg program", f"{program}: {error}"
    return "ffmpeg program", f"{program}: {first[0] if first else 'no version output'}"


def collect_env() -> List[Tuple[str, str]]:
    """(name, value) rows describing this environment."""
    import slowmask

    rows = [("Python", sys.version.replace("\n", " ")), ("platform", platform.platform()),
            ("slowmask", getattr(slowmask, "__version__", _installed_version("slowmask")))]
    rows += torch_rows()
    rows += [(name if name != "PIL" else "Pillow", _version(name)) for name in PACKAGES]
    rows += pyav_rows()
    rows.append(ffmpeg_row())
    return rows


def _installed_version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed (running from a source tree)"


def format_env(rows: List[Tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


if __name__ == "__main__":
    sys.stdout.write(format_env(collect_env()) + "\n")
