"""WandbLog: the run's figures in Weights & Biases (WANDB.ENABLE; the optional `wandb` package,
`pip install -e '.[wandb]'`).

What W&B gets is what json_stats.log holds, record for record: the hook reads the lines
the other hooks appended since its last look (MetricsLog's iteration and epoch records:
loss, lr, grad norm, data and step time, clips/s, memory; validation, the probes, the run
start) and logs each numeric value as `<record type>/<key>` (`train_iter/loss`,
`train_epoch/clips_per_s_total`, `val_epoch/top1_acc`, `probe_epoch/knn_top1_acc`), against
`global_step` (optimizer iterations since the run began, its resumed parts included), with
the record's epoch number as `<record type>/epoch`. The config goes in whole. At the end of
a run that tested, `log_run_end` adds the test figures (`test/top1` ...) and the summary
(engine/summary.py) to the same run, kept open from the training when it ran in this
process (one W&B start per command). tools/visualize.py adds its pictures (`log_pictures`).

A resumed run continues the same W&B run: its id is kept in OUTPUT_DIR/wandb_run_id,
written before the first start; W&B's own files go to OUTPUT_DIR/wandb/. WANDB.MODE
"offline" writes only there (`wandb sync` uploads them later); "" leaves the choice to
W&B (its WANDB_MODE environment variable, else online).
"""

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from fvcore.common.config import CfgNode
from iopath.common.file_io import g_pathmgr

from slowmask.utils.logging import JSON_STATS_FILE

from ..loop import Hook, TrainLoop

logger = logging.getLogger(__name__)

RUN_ID_FILE = "wandb_run_id"
STEP_KEY = "global_step"


@dataclass(frozen=True)
class WandbSettings:
    """Where the run goes in W&B ("" leaves a field to W&B's defaults and environment)."""

    project: str = ""
    entity: str = ""
    name: str = ""
    tags: Sequence[str] = ()
    mode: str = ""

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "WandbSettings":
        """WANDB.PROJECT, ENTITY, NAME (default: OUTPUT_DIR's folder name), TAGS, MODE."""
        name = cfg.WANDB.NAME or os.path.basename(os.path.normpath(cfg.OUTPUT_DIR))
        return cls(cfg.WANDB.PROJECT, cfg.WANDB.ENTITY, name, tuple(cfg.WANDB.TAGS), cfg.WANDB.MODE)


def kept_run_id(output_dir: str) -> Optional[str]:
    """The W&B run id kept in OUTPUT_DIR/wandb_run_id, None before the run's first start."""
    path = os.path.join(output_dir, RUN_ID_FILE)
    if not g_pathmgr.exists(path):
        return None
    with g_pathmgr.open(path) as f:
        return f.read().strip() or None


def run_id(output_dir: str, new_id: str) -> str:
    """The W&B run id of the run in `output_dir`: the one kept in OUTPUT_DIR/wandb_run_id,
    else `new_id`, kept there (written whole) for the run's later parts."""
    kept = kept_run_id(output_dir)
    if kept is not None:
        return kept
    path = os.path.join(output_dir, RUN_ID_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    with g_pathmgr.open(temporary, "w") as f:
        f.write(new_id + "\n")
    os.replace(temporary, path)
    return new_id


def start_run(output_dir: str, settings: WandbSettings, config: Optional[Dict[str, Any]] = None) -> Any:
    """The W&B run of `output_dir` (started, or resumed by its kept id), files under OUTPUT_DIR/wandb."""
    import wandb  # the optional extra, imported only by a run that asks for it (the preflight checked it)

    identifier = run_id(output_dir, uuid.uuid4().hex[:12])  # W&B's ids: letters and digits
    optional = {key: value for key, value in (("project", settings.project), ("entity", settings.entity),
                                              ("mode", settings.mode)) if value}
    run = wandb.init(id=identifier, resume="allow", dir=output_dir, name=settings.name or None,
                     tags=list(settings.tags) or None, config=config, **optional)
    run.define_metric(STEP_KEY)
    run.define_metric("*", step_metric=STEP_KEY)
    logger.info("W&B run %s (id %s, kept in %s)", settings.name, identifier, os.path.join(output_dir, RUN_ID_FILE))
    return run


def scalars(record: Dict[str, Any]) -> Dict[str, float]:
    """A json_stats record's numbers as `<type>/<key>`; its epoch "3/10" as `<type>/epoch` 3."""
    kind = record.get("_type", "record")
    found = {f"{kind}/{key}": value for key, value in record.items()
             if isinstance(value, (int, float)) and not isinstance(value, bool)}
    epoch = str(record.get("epoch", "")).split("/")[0]
    if epoch.isdigit():
        found[f"{kind}/epoch"] = int(epoch)
    return found


class WandbLog(Hook):
    """Mirrors json_stats.log into the W&B run `start()` returns (main process only).

    Args:
        start: () -> a started W&B run (`start_run`), called before training.
        output_dir: where json_stats.log is.
        keep_open: leave the run open after training, for `log_run_end` to add the test to
            and finish (a test follows in this process; a spawned process's run is finished
            by W&B when the process ends).
    """

    def __init__(self, start: Any, output_dir: str, keep_open: bool = False) -> None:
        self.start = start
        self.keep_open = keep_open
        self.path = os.path.join(output_dir, JSON_STATS_FILE)
        self.run: Any = None
        # The records of the run's earlier parts are in W&B already: from here on.
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def before_train(self, loop: TrainLoop) -> None:
        self.run = self.start()
        self._send(loop, loop.epoch * loop.iters_per_epoch + loop.start_iteration)

    def _new_records(self) -> List[Dict[str, Any]]:
        if not os.path.exists(self.path) or os.path.getsize(self.path) == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read()
        complete = text[: text.rfind(b"\n") + 1]  # a line being written is read at the next look
        self.offset += len(complete)
        return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]

    def _send(self, loop: TrainLoop, step: int) -> None:
        for record in self._new_records():
            self.run.log({STEP_KEY: step, **scalars(record)})

    def after_step(self, loop: TrainLoop) -> None:
        self._send(loop, loop.epoch * loop.iters_per_epoch + loop.iteration + 1)

    def after_epoch(self, loop: TrainLoop) -> None:
        self._send(loop, (loop.epoch + 1) * loop.iters_per_epoch)

    def after_train(self, loop: TrainLoop) -> None:
        if self.run is None:
            return
        self._send(loop, loop.epoch * loop.iters_per_epoch + loop.batches_done)
        if not self.keep_open:
            self.run.finish()
        self.run = None


def log_run_end(output_dir: str, settings: WandbSettings, summary: Dict[str, Any]) -> None:
    """The test figures (`test/<key>`) and the run's summary (as the W&B run's summary, nested
    keys joined by "/") added to the run of `output_dir`: the training's, when this process
    keeps it open (WandbLog's keep_open), else resumed; then finished."""
    import wandb

    open_run = wandb.run
    kept = open_run is not None and open_run.id == kept_run_id(output_dir)
    run = open_run if kept else start_run(output_dir, settings)
    test = summary.get("test", {})
    run.log({f"test/{key}": value for key, value in test.items() if isinstance(value, (int, float))})
    run.summary.update(_flat(summary))
    run.finish()


def _flat(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}/"))
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat


def log_pictures(output_dir: str, settings: WandbSettings, key: str, paths: Sequence[str]) -> None:
    """The PNG pictures at `paths` (tools/visualize.py's) added to the run of `output_dir` under `key`."""
    import wandb

    run = start_run(output_dir, settings)
    run.log({key: [wandb.Image(path, caption=os.path.basename(path)) for path in paths]})
    run.finish()
