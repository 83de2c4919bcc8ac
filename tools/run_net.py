#!/usr/bin/env python3
"""The one entry point: pretraining, fine-tuning (TRAIN.ENABLE) and multi-view testing
(TEST.ENABLE; after training, of the checkpoint it wrote).

    python tools/run_net.py --cfg configs/k400_MViT_L_MaskFeat_PT.yaml [KEY VALUE ...]
    python tools/run_net.py --cfg ... --check [KEY VALUE ...]   # only check config, data, devices

Before any model is built, the preflight checks every split the run will read and the
devices (see slowmask/engine/preflight.py). An expected stop prints one line naming the
cause and the fix; its traceback goes to OUTPUT_DIR/stdout.log (or, with --debug, to the
console).

Exit status:
   0  done (or, with --check, everything checked out)
   2  the configuration, its data or the devices cannot run (nothing was trained)
   3  the run stopped on a problem met while running: too much unreadable data, a
      non-finite loss, an unusable checkpoint
  75  stopped by SIGTERM, SIGUSR1 or SIGUSR2 after writing a checkpoint (run the same
      command again to resume, TRAIN.AUTO_RESUME True)
"""

import argparse
import os
import re
import sys
import traceback
from typing import Dict, List, Optional, Tuple, Type

from torch.multiprocessing import ProcessRaisedException

from slowmask.config import ConfigError, load_config
from slowmask.data import NoReadableVideoError
from slowmask.data.custom_modules import CustomModuleError
from slowmask.engine.bad_data import BadDataError
from slowmask.engine.checkpoint import CheckpointError
from slowmask.engine.launch import DeviceError, launch
from slowmask.engine.preemption import EXIT_PREEMPTED, TrainingPreempted
from slowmask.engine.preflight import PreflightError, describe, preflight
from slowmask.engine.testing import run_test
from slowmask.engine.train import train
from slowmask.utils.logging import STDOUT_FILE, setup_logging

EXIT_CANNOT_START = 2
EXIT_STOPPED = 3

# Expected stops -> exit status; anything else is a bug and keeps its traceback.
EXPECTED_STOPS: Dict[Type[BaseException], int] = {
    ConfigError: EXIT_CANNOT_START,
    PreflightError: EXIT_CANNOT_START,
    DeviceError: EXIT_CANNOT_START,
    CustomModuleError: EXIT_CANNOT_START,
    BadDataError: EXIT_STOPPED,
    NoReadableVideoError: EXIT_STOPPED,
    CheckpointError: EXIT_STOPPED,
    FloatingPointError: EXIT_STOPPED,
    TrainingPreempted: EXIT_PREEMPTED,
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Options and KEY VALUE overrides in any order (overrides may come before --cfg);
    everything after --opts is an override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts: List[str] = []
    if "--opts" in argv:
        cut = argv.index("--opts")
        argv, opts = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--init_method", default="tcp://localhost:9999", help="torch.distributed rendezvous address")
    parser.add_argument("--num_shards", type=int, default=None, help="number of machines (overrides NUM_SHARDS)")
    parser.add_argument("--shard_id", type=int, default=None, help="index of this machine (overrides SHARD_ID)")
    parser.add_argument("--check", action="store_true", help="check the config, the data and the devices, then exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an expected stop on the console")
    parser.add_argument("--opts", nargs="*", default=[], help="KEY VALUE overrides (also accepted without --opts)")
    args, overrides = parser.parse_known_args(argv)
    unknown = [item for item in overrides if item.startswith("--")]
    if unknown:
        parser.error(f"unrecognized option {unknown[0]} (config keys are given as KEY VALUE, without dashes)")
    args.opts = overrides + opts
    return args


def config_from_args(args: argparse.Namespace):
    opts = list(args.opts)
    if args.num_shards is not None:
        opts += ["NUM_SHARDS", str(args.num_shards)]
    if args.shard_id is not None:
        opts += ["SHARD_ID", str(args.shard_id)]
    return load_config(args.cfg_file, opts)


def expected_stop(error: BaseException) -> Optional[Tuple[int, str]]:
    """(exit status, one-line message) of an expected stop, else None. A spawned process's
    error arrives as ProcessRaisedException, whose text carries the original type."""
    for kind, status in EXPECTED_STOPS.items():
        if isinstance(error, kind):
            return status, f"{kind.__name__}: {error}"
        if isinstance(error, ProcessRaisedException):
            # The child's traceback ends with "[module.]Name: message".
            raised = re.search(rf"^(?:[\w.]+\.)?{kind.__name__}: (.*)", str(error), re.MULTILINE | re.DOTALL)
            if raised:
                return status, f"{kind.__name__}: {raised.group(1)}"
    return None


def keep_traceback(cfg, error: BaseException) -> str:
    """Append the traceback to OUTPUT_DIR/stdout.log; where it went, for the message."""
    path = os.path.join(cfg.OUTPUT_DIR, STDOUT_FILE)
    try:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        with open(path, "a") as log:
            log.write("".join(traceback.format_exception(error)))
    except OSError:
        return "the traceback could not be written; rerun with --debug to see it"
    return f"traceback in {path}"


def run(cfg, args: argparse.Namespace) -> int:
    if cfg.TRAIN.ENABLE:
        launch(cfg, train, args.init_method)
    if cfg.TEST.ENABLE:
        launch(cfg, run_test, args.init_method)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as error:
        sys.stderr.write(f"config error: {error}\n")
        return EXIT_CANNOT_START
    # Under torchrun every process runs this; one of them writes stdout.log.
    setup_logging(None if args.check else cfg.OUTPUT_DIR, int(os.environ.get("RANK", 0)) == 0)
    try:
        checked = preflight(cfg)
        if args.check:
            print(describe(checked))
            return 0
        return run(cfg, args)
    except BaseException as error:
        stop = expected_stop(error)
        if stop is None or args.debug:
            raise
        status, message = stop
        where = "" if status == EXIT_PREEMPTED or args.check else f" ({keep_traceback(cfg, error)})"
        sys.stderr.write(f"{message.strip()}{where}\n")
        return status


if __name__ == "__main__":
    sys.exit(main())
