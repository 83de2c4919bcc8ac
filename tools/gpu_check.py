#!/usr/bin/env python3
"""One command that measures a GPU for slowmask in a few minutes, one table and its JSON.

    python tools/gpu_check.py [--json OUT] [--peak-tflops X]     (make gpu-check)
    python tools/gpu_check.py --device cpu --tiny                (the same code at toy size)

Rows, in order (README.md, "GPU", says what each means):

- tests: the `gpu`-marked tests (bf16 / fp16 steps, the GradScaler and CUDA RNG through a
  checkpoint, activation checkpointing's memory, NCCL through the launch path, host syncs);
- step: MaskFeat MViTv2-S and MViTv2-L, 16x224x224, bf16 autocast, the engine's TrainStep
  with a fused AdamW, at the largest batch up to 32 that fits: step time, clips/s, peak
  memory, host syncs per step and MFU (fvcore's forward FLOPs x 3 over the device's
  peak bf16 rate: PEAK_BF16_TFLOPS, or --peak-tflops);
- sparse: MAE ViT-B at 90 % masking beside MaskFeat ViT-B (dense), one batch (ViT-tiny with --tiny);
- attention: every attention shape of MViTv2-S, the SDPA backend that ran and its time
  (forward + backward) beside the plain matmul-softmax path;
- hog: the HOG target of 32x3x224x224 on the device beside PySlowFast's way;
- loader: the training loader with DATA_LOADER.NUM_WORKERS = the machine's cores,
  clips/s beside MViTv2-S's step clips/s (is the GPU starved?);
- pyslowfast: PySlowFast's MaskMViT step on the same input, when `slowfast` imports.
"""

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ElementTree
from typing import Callable, Dict, List, Optional

import torch

from slowmask.benchmarks.hog import hog_reference
from slowmask.benchmarks.loader import clips_timing, write_videos
from slowmask.benchmarks.step import step_cfg
from slowmask.benchmarks.timing import Timing, compare, measure
from slowmask.engine.step import TrainStep, masked_prediction_objective
from slowmask.masking import build_mask_generator
from slowmask.methods import build_model
from slowmask.models import MultiScaleAttention
from slowmask.targets.hog import hog
from slowmask.utils.model_info import count_flops

logger = logging.getLogger("gpu_check")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Dense bf16 tensor-core rates in TFLOP/s from NVIDIA's datasheets, by a part of the name
# torch.cuda.get_device_name reports; the first match wins, so the more precise names lead.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)
# Files that hold the `gpu`-marked tests (collecting the whole suite would cost minutes).
GPU_TEST_FILES = ("tests/engine/test_host_syncs.py", "tests/tools/test_gpu_paths.py")
# The largest batch the step rows try; halved on each out-of-memory error.
MAX_BATCH = 32
SDPA_BACKENDS = {int(b): name.lower() for name, b in torch.nn.attention.SDPBackend.__members__.items()}


class Sizes:
    """Configs and input sizes of the rows: the real ones, or toy ones (--tiny) that run
    the same code in seconds on a CPU; `vit` names the ViT size the sparse row ran."""

    def __init__(self, tiny: bool) -> None:
        demo = os.path.join(REPO, "configs", "demo")
        real = os.path.join(REPO, "configs")
        if tiny:
            self.mvit = {"MViT-tiny": os.path.join(demo, "MViT_tiny_MaskFeat_PT.yaml")}
            self.mae, self.maskfeat_vit = (os.path.join(demo, f"ViT_tiny_{m}_PT.yaml") for m in ("MAE", "MaskFeat"))
            self.vit = "ViT-tiny"
            self.frames, self.size, self.max_batch, self.vit_batch = 8, 64, 2, 1
            self.hog, self.warmup, self.repeats, self.video = (2, 32), 1, 2, (32, 64)
        else:
            self.mvit = {name: os.path.join(real, f"k400_MViT_{v}_MaskFeat_PT.yaml")
                         for name, v in (("MViTv2-S", "S"), ("MViTv2-L", "L"))}
            self.mae, self.maskfeat_vit = (os.path.join(real, f"k400_ViT_B_{m}_PT.yaml") for m in ("MAE", "MaskFeat"))
            self.vit = "ViT-B"
            self.frames, self.size, self.max_batch, self.vit_batch = 16, 224, MAX_BATCH, 8
            self.hog, self.warmup, self.repeats, self.video = (32, 224), 2, 5, (320, 426)


def peak_tflops(device: torch.device, override: float) -> Optional[float]:
    """The device's dense bf16 peak: `override` when given, else the table's, else None."""
    if override > 0:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in PEAK_BF16_TFLOPS if part in name), None)


def row(part: str, what: str, **figures) -> dict:
    return {"part": part, "what": what, **figures}


def test_rows(device: torch.device) -> List[dict]:
    """The gpu-marked tests in a child pytest; counts from its JUnit XML."""
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.xml")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                               f"--junitxml={report}", *GPU_TEST_FILES], cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        suite = ElementTree.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    if done.returncode not in (0, 5):
        logger.warning("gpu tests failed:\n%s", done.stdout[-4000:])
    return [row("tests", f"pytest -m gpu ({', '.join(GPU_TEST_FILES)})", seconds=seconds, **counts,
                passed=counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"])]


def _clip_and_masks(cfg, batch: int, device: torch.device):
    frames, size = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    generator = build_mask_generator(cfg)
    masks = torch.stack([generator(torch.Generator().manual_seed(i)) for i in range(batch)])
    return {"clip": clips.to(device), "mask": masks.to(device)}


def _train_step(cfg, device: torch.device) -> TrainStep:
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    fused = device.type == "cuda" or None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    return TrainStep(model, optimizer, masked_prediction_objective, device, autocast_dtype=torch.bfloat16)


def count_host_syncs(fn: Callable[[], object], device: torch.device) -> Optional[int]:
    """Host waits for the device during `fn()` (CUDA's sync debug warnings); None on the CPU."""
    if device.type != "cuda":
        fn()
        return None
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def timed_step(cfg, batch: int, device: torch.device, sizes: Sizes, flops: bool = True) -> Dict[str, object]:
    """Timing (median, peak memory) and host syncs of a bf16 TrainStep at `batch`; with
    `flops`, fvcore's forward FLOPs of the batch."""
    step, inputs = _train_step(cfg, device), _clip_and_masks(cfg, batch, device)
    timing = measure(lambda: step(inputs), sizes.warmup, sizes.repeats, device)
    result = {"timing": timing, "syncs": count_host_syncs(lambda: step(inputs), device)}
    if flops:
        result["forward_flops"] = count_flops(step.model, (inputs["clip"][:1], inputs["mask"][:1])) * batch
    return result


def largest_fitting_step(cfg, device: torch.device, sizes: Sizes) -> Dict[str, object]:
    """timed_step at the largest batch <= sizes.max_batch that fits in memory."""
    batch = sizes.max_batch
    while True:
        try:
            return {"batch": batch, **timed_step(cfg, batch, device, sizes)}
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            logger.info("batch %d does not fit; trying %d", batch, batch // 2)
            batch //= 2
            torch.cuda.empty_cache()


def step_rows(sizes: Sizes, device: torch.device, peak: Optional[float]) -> List[dict]:
    rows = []
    for name, path in sizes.mvit.items():
        cfg = step_cfg(path, [], sizes.frames, sizes.size)
        result = largest_fitting_step(cfg, device, sizes)
        timing: Timing = result["timing"]
        achieved = 3 * result["forward_flops"] / timing.median / 1e12
        rows.append(row("step", f"MaskFeat {name}, {sizes.frames}x{sizes.size}x{sizes.size}, bf16, "
                        f"batch {result['batch']}", batch=result["batch"], step_ms=1000 * timing.median,
                        clips_per_s=result["batch"] / timing.median, peak_mib=_mib(timing.peak_bytes),
                        host_syncs=result["syncs"], tflops=achieved, mfu=achieved / peak if peak else None))
    return rows


def sparse_rows(sizes: Sizes, device: torch.device) -> List[dict]:
    """MAE's sparse encoder at 90 % masking beside MaskFeat's dense one, one batch."""
    ms = {}
    for name, path, extra in (("MAE", sizes.mae, ["AUG.MASK_RATIO", "0.9"]), ("MaskFeat", sizes.maskfeat_vit, [])):
        cfg = step_cfg(path, extra, sizes.frames, sizes.size)
        ms[name] = 1000 * timed_step(cfg, sizes.vit_batch, device, sizes, flops=False)["timing"].median
    what = (f"MAE {sizes.vit} 90 % masked vs MaskFeat {sizes.vit}, batch {sizes.vit_batch}, "
            f"{sizes.frames}x{sizes.size}x{sizes.size}, bf16")
    return [row("sparse", what, step_ms=ms["MAE"], baseline_ms=ms["MaskFeat"], speedup=ms["MaskFeat"] / ms["MAE"])]


def record_sdpa_inputs(model: torch.nn.Module, inputs: Dict[str, torch.Tensor]) -> List[tuple]:
    """(module, q, k, v, q_grid, k_grid) of each attention's first call in one forward."""
    calls, modules = [], [m for m in model.modules() if isinstance(m, MultiScaleAttention)]
    for module in modules:
        def recording(q, k, v, q_grid, k_grid, _module=module, _attend=module._attend_sdpa):
            calls.append((_module, q.detach(), k.detach(), v.detach(), q_grid, k_grid))
            return _attend(q, k, v, q_grid, k_grid)

        module._attend_sdpa = recording
    try:
        with torch.no_grad(), torch.autocast(inputs["clip"].device.type, dtype=torch.bfloat16):
            model(inputs["clip"], inputs["mask"])
    finally:
        for module in modules:
            del module._attend_sdpa
    return calls


def sdpa_backend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> str:
    """The backend torch's dispatcher picks for these inputs (its own choice function)."""
    return SDPA_BACKENDS.get(int(torch._fused_sdp_choice(q, k, v, scale=scale)), "unknown")


def attention_rows(sizes: Sizes, device: torch.device) -> List[dict]:
    """Every distinct attention shape of the first MViT config: backend, SDPA vs plain."""
    name, path = next(iter(sizes.mvit.items()))
    cfg = step_cfg(path, [], sizes.frames, sizes.size)
    model = build_model(cfg).to(device)
    calls = record_sdpa_inputs(model, _clip_and_masks(cfg, 1, device))
    rows, seen = [], set()
    for module, q, k, v, q_grid, k_grid in calls:
        key = (tuple(q.shape), tuple(k.shape), q_grid, k_grid)
        if key in seen:
            continue
        seen.add(key)
        widened = []
        original = torch.nn.functional.scaled_dot_product_attention

        def spy(*args, **kwargs):
            widened.append(args[:3])
            return original(*args, **kwargs)

        torch.nn.functional.scaled_dot_product_attention = spy
        try:
            module._attend_sdpa(q, k, v, q_grid, k_grid)
        finally:
            torch.nn.functional.scaled_dot_product_attention = original
        wq, wk, wv = widened[0]
        fast, plain = compare(_core(module._attend_sdpa, q, k, v, q_grid, k_grid),
                              _core(module._attend_plain, q, k, v, q_grid, k_grid), sizes.warmup, sizes.repeats, device)
        what = f"{name} q {tuple(q.shape)} on {q_grid}, k on {k_grid}, SDPA widths q/k/v {wq.shape[-1]}/{wk.shape[-1]}/{wv.shape[-1]}"
        rows.append(row("attention", what, backend=sdpa_backend(wq, wk, wv, module.scale), sdpa_ms=1000 * fast.median,
                        plain_ms=1000 * plain.median, speedup=plain.median / fast.median))
    return rows


def _core(attend, q, k, v, q_grid, k_grid) -> Callable[[], None]:
    def run() -> None:
        qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
        attend(qg, kg, vg, q_grid, k_grid).float().sum().backward()

    return run


def hog_rows(sizes: Sizes, device: torch.device) -> List[dict]:
    batch, size = sizes.hog
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    fast, reference = compare(lambda: hog(images), lambda: hog_reference(images), sizes.warmup, sizes.repeats, device)
    return [row("hog", f"HOG of {batch}x3x{size}x{size} on {device.type} vs PySlowFast's full-resolution way",
                hog_ms=1000 * fast.median, reference_ms=1000 * reference.median, speedup=reference.median / fast.median)]


def loader_rows(sizes: Sizes, step_clips_per_s: float, work_dir: str, tiny: bool) -> List[dict]:
    """Clips/s of the training loader with one worker per core, beside the step's."""
    cfg = step_cfg(next(iter(sizes.mvit.values())), [], sizes.frames, sizes.size)
    workers = 1 if tiny else os.cpu_count() or 1
    video = write_videos(work_dir, *sizes.video, long_seconds=3.0)["short"]
    timing = clips_timing(cfg, video, work_dir, workers=workers, items=2 * workers, warmup=workers,
                          repeats=sizes.repeats)
    clips = 1.0 / timing.median
    return [row("loader", f"loader, {workers} workers (of {os.cpu_count()} cores), {sizes.frames}x{sizes.size}",
                clips_per_s=clips, step_clips_per_s=step_clips_per_s, keeps_up=clips >= step_clips_per_s,
                workers_needed=workers * step_clips_per_s / clips)]


def pyslowfast_rows() -> List[dict]:
    """PySlowFast's step is a comparison to report, not a requirement: a row saying so
    when its package is not installed."""
    if importlib.util.find_spec("slowfast") is None:
        return [row("pyslowfast", "PySlowFast MaskMViT step: slowfast is not importable here", step_ms=None)]
    return [row("pyslowfast", "PySlowFast MaskMViT step: slowfast imports; this tool does not build its "
                "model (time tools/run_net.py of PySlowFast on the same config by hand)", step_ms=None)]


def _mib(peak: Optional[int]) -> Optional[float]:
    return None if peak is None else peak / 2**20


def format_table(rows: List[dict]) -> str:
    """The rows as a Markdown table: part, what, then the row's figures as name=value."""
    def show(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| part | measured | figures |", "|---|---|---|"]
    for r in rows:
        figures = ", ".join(f"{k}={show(v)}" for k, v in r.items() if k not in ("part", "what"))
        lines.append(f"| {r['part']} | {r['what']} | {figures} |")
    return "\n".join(lines)


def header(device_name: str, peak: Optional[float], tiny: bool, seconds: float) -> str:
    """The line above the table: what was measured, on what, in how long."""
    rate = f"peak bf16 {peak:g} TFLOP/s" if peak else "peak bf16 rate unknown (no MFU; pass --peak-tflops)"
    sizes = "toy sizes (--tiny)" if tiny else "full sizes"
    return (f"slowmask gpu_check: {device_name}, torch {torch.__version__}, {rate}, {os.cpu_count()} cores, "
            f"{sizes}, {seconds:.0f} s")


def run_all(sizes: Sizes, device: torch.device, peak: Optional[float], work_dir: str, tiny: bool) -> List[dict]:
    steps = step_rows(sizes, device, peak)
    rows = test_rows(device) + steps + sparse_rows(sizes, device) + attention_rows(sizes, device)
    rows += hog_rows(sizes, device) + loader_rows(sizes, steps[0]["clips_per_s"], work_dir, tiny)
    return rows + pyslowfast_rows()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="device to measure (default cuda)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (seconds on a CPU; what the tests run)")
    parser.add_argument("--json", default="output/gpu_check/gpu_check.json", help="where the table goes as JSON")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the device's dense bf16 peak in TFLOP/s (default: from the table of known devices)")
    parser.add_argument("--work-dir", default="output/gpu_check", help="the loader's videos")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device is visible; run on a GPU machine, or pass --device cpu --tiny")
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    start = time.perf_counter()
    os.makedirs(args.work_dir, exist_ok=True)
    rows = run_all(Sizes(args.tiny), device, peak, args.work_dir, args.tiny)
    seconds = time.perf_counter() - start
    print(header(name, peak, args.tiny, seconds))
    print(format_table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak, "cores": os.cpu_count(),
                   "tiny": args.tiny, "seconds": seconds, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
