#!/usr/bin/env python3
"""The one entry point: pretraining, fine-tuning (TRAIN.ENABLE) and multi-view testing
(TEST.ENABLE; after training, of the checkpoint TEST.CHECKPOINT names). A training run ends
with its summary, logged and written to OUTPUT_DIR/summary.json (slowmask/engine/summary.py).

    python tools/run_net.py --cfg configs/k400_MViT_L_MaskFeat_PT.yaml [KEY VALUE ...]
    python tools/run_net.py --cfg ... --check [KEY VALUE ...]   # only check config, data, devices

Before any model is built, the preflight checks every split the run will read, the
checkpoints it will load and the devices (slowmask/engine/preflight.py). An expected error
prints one line naming the cause and the fix, and exits with its kind's status (2 config,
3 data, 4 checkpoint, 5 distributed, 6 output, 7 training, 8 worker (a loader worker killed)
and 75 preempted: rerun to resume; see slowmask/utils/errors.py); its traceback goes to
OUTPUT_DIR/stdout.log, or to the console with --debug.
"""

import argparse
import os
import sys
import time
from contextlib import nullcontext
from typing import List, Optional, Sequence

from slowmask.config import load_config
from slowmask.utils.errors import run_tool
from slowmask.utils.logging import fresh_log_file, setup_logging
from slowmask.utils.output_files import OutputDirInUse, in_use_message, recording_exit_status
from slowmask.utils.stop_signals import stopping_at_once
from slowmask.utils.tool_args import tool_parser, unknown_option_message


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Options and KEY VALUE overrides in any order (overrides may come before --cfg);
    everything after --opts is an override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts: List[str] = []
    if "--opts" in argv:
        cut = argv.index("--opts")
        argv, opts = argv[:cut], argv[cut + 1:]
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--init_method", default="tcp://localhost:9999", help="torch.distributed rendezvous address")
    parser.add_argument("--num_shards", type=int, default=None, help="number of machines (overrides NUM_SHARDS)")
    parser.add_argument("--shard_id", type=int, default=None, help="index of this machine (overrides SHARD_ID)")
    parser.add_argument("--check", action="store_true", help="check the config, the data and the devices, then exit")
    parser.add_argument("--opts", nargs="*", default=[], help="KEY VALUE overrides (also accepted without --opts)")
    args, overrides = parser.parse_known_args(argv)
    unknown = [item for item in overrides if item.startswith("--")]
    if unknown:
        parser.error(unknown_option_message(parser, unknown[0]))
    args.opts = overrides + opts
    return args


def config_from_args(args: argparse.Namespace, launcher_opts: Sequence[str] = ()):
    """The config of --cfg with the overrides, --num_shards / --shard_id, then `launcher_opts`."""
    opts = list(args.opts)
    if args.num_shards is not None:
        opts += ["NUM_SHARDS", str(args.num_shards)]
    if args.shard_id is not None:
        opts += ["SHARD_ID", str(args.shard_id)]
    return load_config(args.cfg_file, [*opts, *launcher_opts])


def run(argv: List[str]) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    cfg = config_from_args(args)
    in_use = in_use_message(cfg.OUTPUT_DIR)
    if in_use:  # before the log opens: nothing of this run lands in the other one's files
        raise OutputDirInUse(in_use)
    # Imported only now: torch, the models and the data take seconds to load, and a second
    # run on a held OUTPUT_DIR is refused before them (the modules above leave torch out).
    from slowmask.engine.distributed import started_by_torchrun, torchrun_place
    from slowmask.engine.evaluate import run_test
    from slowmask.engine.launch import check_launch, launch, torchrun_cpu_overrides
    from slowmask.engine.preflight import check_output_dir, describe, preflight
    from slowmask.engine.summary import write_run_summary
    from slowmask.engine.train import train

    cpu_processes = torchrun_cpu_overrides(cfg)
    if cpu_processes:  # torchrun's CPU processes are the shards: the checks see the job's real size
        cfg = config_from_args(args, cpu_processes)
    check_launch(cfg, args.init_method)  # a wrong shard or address fails before the preflight's minutes
    check_output_dir(cfg)  # before the log opens in it
    # torchrun's own status is 1 when any rank fails (also when all stopped with 75): each rank's is kept
    recording = started_by_torchrun() and not args.check
    with recording_exit_status(cfg.OUTPUT_DIR, torchrun_place().rank) if recording else nullcontext():
        # Under torchrun every process runs this; one of them writes stdout.log.
        setup_logging(None if args.check else cfg.OUTPUT_DIR, int(os.environ.get("RANK", 0)) == 0)
        with stopping_at_once():  # nothing to save yet: a stop signal ends the run here (launch covers the rest)
            checked = preflight(cfg)
        if args.check:
            print(describe(checked))
            return 0
        if cfg.TRAIN.ENABLE:
            launch(cfg, train, args.init_method)
        if cfg.TEST.ENABLE:
            launch(cfg, run_test, args.init_method)
        if cfg.TRAIN.ENABLE and int(os.environ.get("RANK", 0)) == 0:
            write_run_summary(cfg, time.perf_counter() - started, tested=cfg.TEST.ENABLE)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_tool(run, argv, fresh_log_file())


if __name__ == "__main__":
    sys.exit(main())
