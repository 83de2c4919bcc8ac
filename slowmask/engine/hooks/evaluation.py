"""The hooks that measure the representation as the run goes: the probes of a
pretraining run (ProbeHook; the probes are in engine/probe.py) and a classifier's
validation with the best checkpoint kept (PeriodicValidation; engine/evaluate.py).
"""

import logging
import time
from typing import Any, Callable, Dict, Optional

import torch

from slowmask.utils.logging import write_json_stats

from ..distributed import is_main_process
from ..evaluate import shown_accuracies
from ..loop import Hook, TrainLoop

logger = logging.getLogger(__name__)


class ProbeHook(Hook):
    """Every `period` epochs (and after the last), `evaluate()` -> {probe: top-1 %}
    (e.g. {"knn": .., "linear": ..}), logged, written as a "probe_epoch" JSON line with
    <probe>_top1_acc keys (so tools/plot.py draws them) and, with a `writer`, as
    TensorBoard scalars probe/<probe>_top1_acc. Every rank calls `evaluate` (features
    are gathered across ranks); only the main process writes.

    Its time is logged beside the epoch's (from this hook's before_epoch to its
    after_epoch), so its cost is visible. `prepare()`, if given, runs before training
    (e.g. decoding the probe sets once). `chance`, if given (100 / the number of classes,
    evaluate.chance_top1), is logged beside the scores and written as "chance".
    """

    def __init__(
        self,
        evaluate: Callable[[], Dict[str, float]],
        period: int,
        output_dir: str,
        writer: Any = None,
        prepare: Optional[Callable[[], None]] = None,
        chance: Optional[float] = None,
    ) -> None:
        if period < 1:
            raise ValueError(f"PROBE.PERIOD must be at least 1, got {period}")
        self.chance = chance
        self.evaluate = evaluate
        self.period = period
        self.output_dir = output_dir
        self.writer = writer
        self.prepare = prepare
        self.epoch_start = time.perf_counter()

    def before_train(self, loop: TrainLoop) -> None:
        if self.prepare is not None:
            start = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                self.prepare()
            logger.info("probe sets ready in %.1f s", time.perf_counter() - start)

    def before_epoch(self, loop: TrainLoop) -> None:
        self.epoch_start = time.perf_counter()

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        start = time.perf_counter()
        epoch_seconds = start - self.epoch_start
        with torch.random.fork_rng(devices=[]):  # the run's data order and masks must not depend on the probe
            scores = self.evaluate()
        seconds = time.perf_counter() - start
        if not is_main_process():
            return
        stats = {"_type": "probe_epoch", "epoch": f"{finished}/{loop.max_epoch}",
                 **{f"{name}_top1_acc": value for name, value in scores.items()},
                 "probe_time": seconds, "epoch_time": epoch_seconds}
        shown = ", ".join(f"{name} top-1 {value:.2f} %" for name, value in scores.items())
        if self.chance is not None:
            stats["chance"] = self.chance
            shown += f" (chance {self.chance:.2f} %)"
        logger.info("probe after epoch %d: %s (%.1f s, %.0f %% of the epoch's %.1f s)",
                    finished, shown, seconds, 100 * seconds / max(epoch_seconds, 1e-9), epoch_seconds)
        write_json_stats(self.output_dir, stats)
        if self.writer is not None:
            for name, value in scores.items():
                self.writer.add_scalar(f"probe/{name}_top1_acc", value, finished)
            self.writer.flush()

    def after_train(self, loop: TrainLoop) -> None:
        if self.writer is not None:
            self.writer.close()


class PeriodicValidation(Hook):
    """Every `period` epochs and after the last one, the classifier's top-1 / top-5 on
    the "val" split (one view per video), logged and written as a JSON line; the
    checkpoint of the best top-1 so far is kept beside the periodic ones (`save_best`,
    OUTPUT_DIR/checkpoints/checkpoint_best.pyth). In a multi-process job the hook runs in
    every process, each scoring its share of the videos; the main process logs and writes.

    Args:
        evaluate: () -> metrics with "top1", "num_videos" and, with more than 5 classes,
            "top5" (see evaluate.evaluate);
            in a multi-process job a collective that every process calls.
        period: validate after every `period`-th epoch (and the last).
        output_dir: where json_stats.log is.
        save_best: (finished epoch, 0-based) -> None, writes the best checkpoint; called
            when top-1 beats every earlier validation of this run, on each process given
            one (the main process; every process of a sharded run, whose ranks all write).
        writes: whether this process logs and writes the JSON line (the main process of
            the job); the others only take part.
        evaluate_ema: () -> the same metrics of the weights' moving average (MODEL.EMA),
            validated after the raw weights on the same split: both figures are logged
            (JSON `ema_top1_acc`, `best_ema_top1_acc`) and the better one named.

    The best top-1 so far and its epoch (of the raw weights, and of the average) are the
    hook's state: a resumed run keeps comparing with the interrupted run's best.
    """

    def __init__(
        self,
        evaluate: Callable[[], Dict[str, Any]],
        period: int,
        output_dir: str,
        save_best: Optional[Callable[[int], None]] = None,
        writes: bool = True,
        evaluate_ema: Optional[Callable[[], Dict[str, Any]]] = None,
    ) -> None:
        if period < 1:
            raise ValueError(f"TRAIN.EVAL_PERIOD must be at least 1, got {period}")
        self.evaluate = evaluate
        self.period = period
        self.output_dir = output_dir
        self.save_best = save_best
        self.writes = writes
        self.evaluate_ema = evaluate_ema
        self.best_top1 = self.best_ema_top1 = float("-inf")
        self.best_epoch = self.best_ema_epoch = 0  # 1-based epochs of the bests (0: none yet)

    def state_dict(self) -> Dict[str, Any]:
        return {"best_top1": self.best_top1, "best_epoch": self.best_epoch,
                "best_ema_top1": self.best_ema_top1, "best_ema_epoch": self.best_ema_epoch}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best_top1, self.best_epoch = float(state["best_top1"]), int(state["best_epoch"])
        self.best_ema_top1, self.best_ema_epoch = float(state["best_ema_top1"]), int(state["best_ema_epoch"])

    def after_epoch(self, loop: TrainLoop) -> None:
        finished = loop.epoch + 1
        if finished % self.period and finished != loop.max_epoch:
            return
        metrics = self.evaluate()
        improved = metrics["top1"] > self.best_top1
        if improved:
            self.best_top1, self.best_epoch = metrics["top1"], finished
        ema = None
        if self.evaluate_ema is not None:
            with torch.random.fork_rng(devices=[]):  # the raw weights' run is the same with the average or without
                ema = self.evaluate_ema()
        if ema is not None and ema["top1"] > self.best_ema_top1:
            self.best_ema_top1, self.best_ema_epoch = ema["top1"], finished
        if self.writes:
            self._report(loop, metrics, improved, ema)
        if improved and self.save_best is not None:
            self.save_best(loop.epoch)

    def _report(self, loop: TrainLoop, metrics: Dict[str, Any], improved: bool, ema: Optional[Dict[str, Any]]) -> None:
        finished = loop.epoch + 1
        stats = {"_type": "val_epoch", "epoch": f"{finished}/{loop.max_epoch}", "top1_acc": metrics["top1"]}
        if "top5" in metrics:  # not with 5 classes or fewer (see evaluate.accuracy)
            stats["top5_acc"] = metrics["top5"]
        stats.update(num_videos=metrics["num_videos"], best_top1_acc=self.best_top1)
        logger.info(
            "validation after epoch %d: %s (%d videos); best top-1 %.2f %%",
            finished, shown_accuracies(metrics), metrics["num_videos"], self.best_top1,
        )
        if ema is not None:
            stats.update(ema_top1_acc=ema["top1"], best_ema_top1_acc=self.best_ema_top1)
            if "top5" in ema:
                stats["ema_top5_acc"] = ema["top5"]
            better = "the average" if ema["top1"] > metrics["top1"] else (
                "the raw weights" if ema["top1"] < metrics["top1"] else "neither")
            logger.info("validation of the weights' moving average after epoch %d: %s; best %.2f %%; better: %s",
                        finished, shown_accuracies(ema), self.best_ema_top1, better)
        write_json_stats(self.output_dir, stats)
