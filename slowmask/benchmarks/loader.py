"""The loader part of `tools/benchmark.py`: clips per second of the training loader on
real-resolution videos, each figure beside a baseline measured in the same run.

    python tools/benchmark.py --cfg CONFIG --what loader

Videos: panning-texture H.264 files (write_panning_video) of 10 seconds and of
5 minutes, written once into a cache folder. Rows:

- repeated sampling: DATA.TRAIN_CROP_NUM_TEMPORAL windows cut from one decode against one
  clip per decode;
- seeking: the loader against decoding the whole video, then sampling (the naive way);
- long video: a clip of a long video (--long-seconds, 5 minutes by default) against a
  clip of a 10-second one (seek works when this stays near 1);
- both backends (PyAV, decord), each with its own one-window baseline;
- the ceiling of repeated sampling: decoding alone (no crop, no transfer), several
  windows against one. However cheap the rest of an item becomes, the loader's
  speedup from windows cannot exceed this ratio;
- torchcodec (where it loads): its loader at one window beside PyAV's decoding-only
  ceiling at one window, the most a PyAV loader can reach (its own decoding alone rides
  along in the row as `decoding_only_clips_per_s`).
"""

import gc
import importlib
import logging
import multiprocessing
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr

from slowmask.data import Video, build_dataset, build_loader
from slowmask.data.synthetic import render_panning_texture
from slowmask.data.video_writer import pick_encoder, write_video

from .table import row
from .timing import Timing, compare, peak_resident_bytes

logger = logging.getLogger(__name__)


class DecodeAllVideo(Video):
    """The naive reader, as a baseline: every frame from the start is decoded and
    converted, then the requested ones are picked."""

    def __init__(self, video: Video) -> None:
        self.video = video

    @property
    def fps(self) -> float:
        return self.video.fps

    @property
    def num_frames(self) -> int:
        return self.video.num_frames

    def get_frames(self, indices) -> torch.Tensor:
        everything = self.video.get_frames(range(self.video.num_frames))
        index = torch.as_tensor(indices, dtype=torch.long).clamp(0, everything.shape[0] - 1)
        return everything[index]

    def close(self) -> None:
        self.video.close()


def decode_all_opener(open_video: Callable[[str], Video]) -> Callable[[str], Video]:
    """An opener like `open_video` whose videos decode everything (DecodeAllVideo)."""

    def _open(path: str) -> Video:
        return DecodeAllVideo(open_video(path))

    return _open


def write_panning_video(
    path: str, seconds: float, height: int = 320, width: int = 426, fps: int = 30, gop: int = 250, seed: int = 0
) -> str:
    """Write a `seconds`-long panning-texture video (see
    slowmask.data.synthetic.render_panning_texture) to `path`, unless it exists; returns
    `path`. H.264 when available, a keyframe every `gop` frames (250: libx264's default,
    which re-encoded Kinetics files carry) and no scene-cut keyframes, so that seeking
    costs what it costs on such files."""
    if g_pathmgr.exists(path):
        return path
    num_frames = int(round(seconds * fps))
    codec = pick_encoder()
    options = {"preset": "veryfast", "sc_threshold": "0"} if codec == "libx264" else {}
    partial = f"{path}.partial{os.path.splitext(path)[1]}"
    frames = render_panning_texture(np.random.default_rng(seed), num_frames, height, width, fps)
    write_video(partial, frames, fps, codec, gop=gop, options=options)
    g_pathmgr.mv(partial, path)
    logger.info("wrote %s (%d frames, %dx%d, %s)", path, num_frames, width, height, codec)
    return path


def write_videos(video_dir: str, height: int, width: int, long_seconds: float) -> Dict[str, str]:
    """The benchmark's videos in `video_dir` (written on first use): {"short": a
    10-second video, "long": a `long_seconds` one}, both height x width at 30 fps."""
    os.makedirs(video_dir, exist_ok=True)
    lengths = {"short": 10.0, "long": long_seconds}
    paths = {key: os.path.join(video_dir, f"pan_{seconds:g}s_{height}x{width}.mp4") for key, seconds in lengths.items()}
    return {key: write_panning_video(paths[key], lengths[key], height, width) for key in lengths}


def _loader_cfg(cfg: CfgNode, list_dir: str, backend: str, windows: int, workers: int) -> CfgNode:
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.PATH_PREFIX = list_dir, ""
    cfg.DATA.DECODING_BACKEND = backend
    cfg.DATA.TRAIN_CROP_NUM_TEMPORAL = windows  # windows of one decode
    cfg.DATA_LOADER.NUM_WORKERS = workers
    cfg.TRAIN.BATCH_SIZE, cfg.NUM_GPUS, cfg.NUM_SHARDS = 1, 0, 1
    cfg.freeze()
    return cfg


def clips_timing(
    cfg: CfgNode,
    video: str,
    work_dir: str,
    backend: str = "pyav",
    windows: int = 1,
    workers: int = 1,
    items: int = 4,
    warmup: int = 1,
    repeats: int = 3,
    decode_all: bool = False,
) -> Timing:
    """Seconds per clip out of the training loader (one video per batch), per repeat of
    `items` batches; peak_bytes is the workers' peak resident memory."""
    list_dir = os.path.join(work_dir, f"list_{os.path.basename(video)}")
    os.makedirs(list_dir, exist_ok=True)
    with open(os.path.join(list_dir, "train.csv"), "w") as f:
        f.writelines(f"{video} 0\n" for _ in range(warmup + repeats * items))
    cfg = _loader_cfg(cfg, list_dir, backend, windows, workers)
    dataset = build_dataset(cfg, "train")
    if decode_all:
        dataset.open_video = decode_all_opener(dataset.open_video)
    loader = build_loader(cfg, "train", dataset)
    batches = iter(loader)
    for _ in range(warmup):
        next(batches)
    timing = Timing()
    for _ in range(repeats):
        start = time.perf_counter()
        clips = sum(next(batches)["clip"].shape[0] for _ in range(items))
        timing.add((time.perf_counter() - start) / clips, None)
    peaks = [peak_resident_bytes(child.pid) for child in multiprocessing.active_children()]
    timing.peak_bytes = max((p for p in peaks if p is not None), default=None)
    del batches, loader
    gc.collect()
    return timing


def decode_only_timings(
    cfg: CfgNode, video: str, work_dir: str, windows: int, items: int = 4, repeats: int = 3, backend: str = "pyav"
) -> Tuple[Timing, Timing]:
    """Seconds per clip of decoding alone, in this process: `windows` windows of one
    decode against one window per decode (the training sampler's windows)."""
    list_dir = os.path.join(work_dir, f"list_{os.path.basename(video)}")
    os.makedirs(list_dir, exist_ok=True)
    with open(os.path.join(list_dir, "train.csv"), "w") as f:
        f.write(f"{video} 0\n")
    dataset = build_dataset(_loader_cfg(cfg, list_dir, backend, 1, 0), "train")
    generator = torch.Generator().manual_seed(0)

    def decode(windows: int) -> Callable[[], None]:
        def _call() -> None:
            for _ in range(items):
                with dataset.open_video(video) as opened:
                    sample = [dataset.sampler(opened.num_frames, opened.fps, generator) for _ in range(windows)]
                    opened.get_frames(torch.cat(sample))

        return _call

    many, one = compare(decode(windows), decode(1), warmup=1, repeats=repeats)
    return _per_clip(many, items * windows), _per_clip(one, items)


def _per_clip(timing: Timing, clips: int) -> Timing:
    return Timing([seconds / clips for seconds in timing.seconds], timing.peak_bytes)


def torchcodec_loads() -> bool:
    """Whether the optional torchcodec backend (and the FFmpeg libraries it loads) is installed."""
    try:
        importlib.import_module("slowmask.data.decoders.torchcodec_video")
    except ImportError:
        return False
    return True


def loader_rows(
    cfg: CfgNode,
    video_dir: str,
    height: int = 320,
    width: int = 426,
    long_seconds: float = 300.0,
    workers: int = 1,
    items: int = 4,
    repeats: int = 3,
    backends: Optional[List[str]] = None,
) -> List[dict]:
    """The loader rows of the benchmark table (see the module's docstring)."""
    videos = write_videos(video_dir, height, width, long_seconds)
    data = cfg.DATA
    clip = f"{data.NUM_FRAMES}x{data.SAMPLING_RATE} at {data.TRAIN_CROP_SIZE}, {workers} worker(s)"

    def timing(**kwargs) -> Timing:
        options = {"video": videos["short"], "workers": workers, "items": items, "repeats": repeats, **kwargs}
        return clips_timing(cfg, work_dir=video_dir, **options)

    one = timing(windows=1)
    rows = [
        row("loader", f"pyav, TRAIN_CROP_NUM_TEMPORAL=4 ({clip})", timing(windows=4), "TRAIN_CROP_NUM_TEMPORAL=1", one,
            per_clip=True, target=2.5),
        row("loader", f"pyav, seek ({clip})", one, "decode whole video, then sample",
            timing(windows=1, decode_all=True), per_clip=True),
        row("loader", f"pyav, {long_seconds:g}-s video, TRAIN_CROP_NUM_TEMPORAL=1 ({clip})", timing(windows=1, video=videos["long"]),
            "10-s video", one, per_clip=True, cost_limit=2.0),
    ]
    many, one_window = decode_only_timings(cfg, videos["short"], video_dir, 4, items, repeats)
    rows.append(row("loader", "pyav, decoding only, TRAIN_CROP_NUM_TEMPORAL=4 (ceiling of the first row)", many,
                    "decoding only, TRAIN_CROP_NUM_TEMPORAL=1", one_window, per_clip=True))
    if torchcodec_loads():
        _, decoding_only = decode_only_timings(cfg, videos["short"], video_dir, 1, items, repeats, "torchcodec")
        rows.append(row("loader", f"torchcodec, TRAIN_CROP_NUM_TEMPORAL=1 ({clip})", timing(backend="torchcodec"),
                        "pyav, decoding only, TRAIN_CROP_NUM_TEMPORAL=1 (the ceiling)", one_window, per_clip=True,
                        decoding_only_clips_per_s=1.0 / decoding_only.median))
    for backend in backends or ["decord"]:
        single = timing(backend=backend, windows=1)
        rows.append(row("loader", f"{backend}, TRAIN_CROP_NUM_TEMPORAL=4 ({clip})", timing(backend=backend, windows=4),
                        "TRAIN_CROP_NUM_TEMPORAL=1", single, per_clip=True))
    return rows
