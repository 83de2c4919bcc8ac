#!/usr/bin/env python3
"""The one entry point: pretraining, fine-tuning (TRAIN.ENABLE) and multi-view testing
(TEST.ENABLE; after training, of the checkpoint it wrote).

Exit status: 0 done; 2 a configuration error; 75 stopped by SIGTERM, SIGUSR1 or SIGUSR2
after writing a checkpoint (run the same command again to resume, TRAIN.AUTO_RESUME True).

    python tools/run_net.py --cfg configs/k400_MViT_L_MaskFeat_PT.yaml [KEY VALUE ...]
"""

import argparse
import sys

from torch.multiprocessing import ProcessRaisedException

from slowmask.config import ConfigError, load_config
from slowmask.engine.launch import launch
from slowmask.engine.preemption import EXIT_PREEMPTED, TrainingPreempted
from slowmask.engine.testing import run_test
from slowmask.engine.train import train


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--init_method", default="tcp://localhost:9999", help="torch.distributed rendezvous address")
    parser.add_argument("--num_shards", type=int, default=None, help="number of machines (overrides NUM_SHARDS)")
    parser.add_argument("--shard_id", type=int, default=None, help="index of this machine (overrides SHARD_ID)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides (also accepted without --opts)")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace):
    opts = list(args.overrides) + list(args.opts)
    if args.num_shards is not None:
        opts += ["NUM_SHARDS", str(args.num_shards)]
    if args.shard_id is not None:
        opts += ["SHARD_ID", str(args.shard_id)]
    return load_config(args.cfg_file, opts)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as error:
        sys.stderr.write(f"config error: {error}\n")
        return 2
    if cfg.TRAIN.ENABLE:
        try:
            launch(cfg, train, args.init_method)
        except (TrainingPreempted, ProcessRaisedException) as error:
            if TrainingPreempted.__name__ not in f"{type(error).__name__} {error}":
                raise  # a spawned process failed for another reason
            sys.stderr.write(f"{str(error).strip().splitlines()[-1]}\n")
            return EXIT_PREEMPTED
    if cfg.TEST.ENABLE:
        launch(cfg, run_test, args.init_method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
