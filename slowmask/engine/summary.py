"""The end-of-run summary: one block a person reads at a glance, logged at the end of a
training run (after its test) and written to OUTPUT_DIR/summary.json.

It is read back from what the run wrote, so that a resumed run summarizes the whole run,
its earlier parts included: the `run_start` records of json_stats.log (`run_start_record`,
written by each training start: the method, the parameters, the training items), the
epoch, iteration, validation and probe records, test_results.json and the files in
OUTPUT_DIR. Only the wall time is this command's own.

summary.json holds: method, model (name, parameters, trainable_parameters), data (dataset,
path, train_items, clip), epochs (done, max, iterations_per_epoch), wall_time_s (this
command: training, validation, test), train_time_s (the epochs' data and compute time, all
parts of the run), clips_per_s (the job's, over all epochs), peak_memory_mb, loss_first /
loss_last (the first and last epoch's mean loss), best_val_top1 / best_val_epoch (and
best_ema_val_top1 / best_ema_val_epoch with MODEL.EMA), probes (the last probe's top-1 per
probe), test (test_results.json's figures and the checkpoint tested, when this command
tested), and files: where to look next, or the command that draws what is not there yet.
"""

import json
import logging
import os
from typing import Any, Dict, List

from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr
from torch import nn

from slowmask import checkpoint
from slowmask.utils.logging import JSON_STATS_FILE, read_json_stats

from .evaluate import RESULTS_FILE
from .hooks import WandbSettings, log_run_end

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
# Pictures a reader looks at next, under OUTPUT_DIR: (key, name, the command that draws them).
CURVES = ("curves", "curves.png", "python tools/plot.py {out}")
VISUALIZATIONS = ("visualizations", "vis", "python tools/visualize.py --cfg {out}/config.yaml")  # pretraining's
TEST_FIGURES = ("top1", "top5", "num_videos", "views_per_video", "chance", "majority_baseline", "checkpoint")


def run_start_record(cfg: CfgNode, model: nn.Module, train_items: int) -> Dict[str, Any]:
    """The json_stats.log record a training start writes: what runs, on what."""
    return {
        "_type": "run_start",
        "method": type(model).__name__,
        "model_name": cfg.MODEL.MODEL_NAME,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "dataset": cfg.TRAIN.DATASET,
        "data_path": cfg.DATA.PATH_TO_DATA_DIR,
        "train_items": train_items,
        "clip": f"{cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}x{cfg.DATA.TRAIN_CROP_SIZE}",
    }


def _records(output_dir: str, kind: str) -> List[Dict[str, Any]]:
    if not g_pathmgr.exists(os.path.join(output_dir, JSON_STATS_FILE)):
        return []
    return [record for record in read_json_stats(output_dir) if record.get("_type") == kind]


def _best(validations: List[Dict[str, Any]], key: str) -> Dict[str, Any]:
    """{"top1", "epoch"} of the highest `key` among validation records (the first of ties)."""
    scored = [record for record in validations if key in record]
    if not scored:
        return {"top1": None, "epoch": None}
    best = max(scored, key=lambda record: record[key])  # max keeps the first of equal ones
    return {"top1": best[key], "epoch": int(str(best["epoch"]).split("/")[0])}


def _training(output_dir: str) -> Dict[str, Any]:
    """Epochs, times, throughput, memory and losses from the epoch and iteration records."""
    epochs, iterations = _records(output_dir, "train_epoch"), _records(output_dir, "train_iter")
    seconds = sum(record["epoch_time"] for record in epochs)
    clips = sum(record["clips"] * record["clips_per_s_total"] / record["clips_per_s"]
                for record in epochs if record["clips_per_s"])  # the job's clips: every process's share
    return {
        "epochs_done": int(str(epochs[-1]["epoch"]).split("/")[0]) if epochs else 0,
        "iterations_per_epoch": int(str(iterations[-1]["iter"]).split("/")[1]) if iterations else None,
        "train_time_s": seconds,
        "clips_per_s": clips / seconds if seconds > 0 else None,
        "peak_memory_mb": max((record["mem_mb"] for record in iterations), default=None),
        "loss_first": epochs[0].get("loss") if epochs else None,
        "loss_last": epochs[-1].get("loss") if epochs else None,
    }


def _files(cfg: CfgNode) -> Dict[str, str]:
    """Where to look next: the run's files, and for a picture not drawn yet, the command that draws it."""
    out = cfg.OUTPUT_DIR
    found = {"log": os.path.join(out, "stdout.log"), "json_stats": os.path.join(out, JSON_STATS_FILE),
             "checkpoints": checkpoint.checkpoint_dir(out)}
    for key, name, draws in (CURVES, VISUALIZATIONS) if cfg.MASK.ENABLE else (CURVES,):
        path = os.path.join(out, name)
        found[key] = path if g_pathmgr.exists(path) else f"not drawn yet: {draws.format(out=out)}"
    if cfg.TENSORBOARD.ENABLE:
        found["tensorboard"] = cfg.TENSORBOARD.LOG_DIR or os.path.join(out, "runs")
    if cfg.WANDB.ENABLE:
        found["wandb"] = os.path.join(out, "wandb")
    return found


def run_summary(cfg: CfgNode, wall_seconds: float, tested: bool) -> Dict[str, Any]:
    """The summary of the run in cfg.OUTPUT_DIR (see the module's docstring); `tested`:
    whether this command ran the test, whose results then join it."""
    out = cfg.OUTPUT_DIR
    starts = _records(out, "run_start")
    start = starts[-1] if starts else {}
    training = _training(out)
    validations = _records(out, "val_epoch")
    probes = _records(out, "probe_epoch")
    best, best_ema = _best(validations, "top1_acc"), _best(validations, "ema_top1_acc")
    summary: Dict[str, Any] = {
        "method": start.get("method"),
        "model": {key: start.get(key) for key in ("model_name", "parameters", "trainable_parameters")},
        "data": {key: start.get(key) for key in ("dataset", "data_path", "train_items", "clip")},
        "epochs": {"done": training.pop("epochs_done"), "max": cfg.SOLVER.MAX_EPOCH,
                   "iterations_per_epoch": training.pop("iterations_per_epoch")},
        "wall_time_s": wall_seconds,
        **training,
        "best_val_top1": best["top1"], "best_val_epoch": best["epoch"],
    }
    if best_ema["top1"] is not None:
        summary.update(best_ema_val_top1=best_ema["top1"], best_ema_val_epoch=best_ema["epoch"])
    if probes:
        summary["probes"] = {key[:-len("_top1_acc")]: value for key, value in probes[-1].items()
                             if key.endswith("_top1_acc")}
    results = os.path.join(out, RESULTS_FILE)
    if tested and g_pathmgr.exists(results):
        with g_pathmgr.open(results) as f:
            figures = json.load(f)
        summary["test"] = {key: figures[key] for key in TEST_FIGURES if key in figures}
    summary["files"] = _files(cfg)
    return summary


def _shown(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def summary_block(summary: Dict[str, Any]) -> str:
    """The summary as the lines the log shows."""
    model, data, epochs = summary["model"], summary["data"], summary["epochs"]
    parameters = f"{model['parameters']:,}" if model["parameters"] is not None else "-"
    lines = [
        f"method {summary['method']} (MODEL.MODEL_NAME {model['model_name']}), {parameters} parameters",
        f"data {data['dataset']} {data['data_path']}: {data['train_items']} training items, clips {data['clip']}",
        f"epochs {epochs['done']}/{epochs['max']} of {epochs['iterations_per_epoch']} iterations; wall time "
        f"{_shown(summary['wall_time_s'], ' s', 1)} (training {_shown(summary['train_time_s'], ' s', 1)}), "
        f"{_shown(summary['clips_per_s'], ' clips/s', 1)}, peak memory {_shown(summary['peak_memory_mb'], ' MB', 0)}",
        f"loss first epoch {_shown(summary['loss_first'], digits=5)}, last {_shown(summary['loss_last'], digits=5)}",
    ]
    if summary["best_val_top1"] is not None:
        ema = (f"; weights' average {_shown(summary['best_ema_val_top1'], ' %')} (epoch {summary['best_ema_val_epoch']})"
               if "best_ema_val_top1" in summary else "")
        lines.append(f"best val top-1 {_shown(summary['best_val_top1'], ' %')} (epoch {summary['best_val_epoch']}){ema}")
    if "probes" in summary:
        lines.append("last probe: " + ", ".join(f"{name} {_shown(value, ' %')}" for name, value in summary["probes"].items()))
    if "test" in summary:
        test = summary["test"]
        top5 = f", top-5 {_shown(test['top5'], ' %')}" if "top5" in test else ""
        lines.append(f"test top-1 {_shown(test['top1'], ' %')}{top5} on {test['num_videos']} videos x "
                     f"{test['views_per_video']} views (chance {_shown(test['chance'], ' %')}) of {test.get('checkpoint')}")
    lines += [f"{key}: {path}" for key, path in summary["files"].items()]
    return "\n".join(lines)


def write_run_summary(cfg: CfgNode, wall_seconds: float, tested: bool) -> str:
    """Log the run's summary block and write it to OUTPUT_DIR/summary.json (replaced
    whole); returns the file's path."""
    summary = run_summary(cfg, wall_seconds, tested)
    path = os.path.join(cfg.OUTPUT_DIR, SUMMARY_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    with g_pathmgr.open(temporary, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(temporary, path)
    logger.info("run summary (also in %s):\n%s", path, summary_block(summary))
    if cfg.WANDB.ENABLE and tested:  # the training's figures are in W&B already; the test's join them
        log_run_end(cfg.OUTPUT_DIR, WandbSettings.from_config(cfg), summary)
    return path
