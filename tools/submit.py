#!/usr/bin/env python3
"""Submit a run to SLURM through submitit: the same config and overrides as run_net.py,
on NODES machines with GPUS_PER_NODE tasks each (one per GPU; NUM_SHARDS and NUM_GPUS
are set to match). On preemption or time-out the job is requeued and resumes from its
newest checkpoint (TRAIN.AUTO_RESUME). submitit's files and logs go to OUTPUT_DIR/slurm.

    python tools/submit.py --cfg configs/k400_MViT_L_MaskFeat_PT.yaml --nodes 8 \\
        --gpus_per_node 8 --partition learnfair --time 4320 OUTPUT_DIR /checkpoint/me/mf_l

Needs `pip install 'slowmask[slurm]'`. `--cluster debug` runs the task in this process
(to try a config), `--cluster local` in local subprocesses.
"""

import argparse
import logging
import os
import sys
from typing import Any, Dict, List

from slowmask.config import ConfigError, load_config
from slowmask.engine.evaluate import run_test
from slowmask.engine.launch import SlurmTask, import_submitit
from slowmask.engine.train import train
from slowmask.utils.errors import UsageError, run_tool
from slowmask.utils.tool_args import parse_with_overrides, tool_parser

logger = logging.getLogger("slowmask.submit")

SLURM_DIR = "slurm"


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument("--cfg", dest="cfg_file", required=True, help="yaml config file")
    parser.add_argument("--nodes", type=int, default=1, help="machines (NUM_SHARDS)")
    parser.add_argument("--gpus_per_node", type=int, default=8, help="GPUs and tasks per machine (NUM_GPUS)")
    parser.add_argument("--partition", default="", help="SLURM partition (cluster default when empty)")
    parser.add_argument("--time", type=int, default=72 * 60, help="time limit of one allocation, minutes")
    parser.add_argument("--cpus_per_task", type=int, default=10, help="CPUs per task (loader workers + 1)")
    parser.add_argument("--mem_gb", type=int, default=0, help="memory per node in GB (0: SLURM's default)")
    parser.add_argument("--job_name", default="slowmask", help="SLURM job name")
    parser.add_argument("--port", type=int, default=0, help="rendezvous port on the first node (0: from the job id)")
    parser.add_argument("--signal_delay_s", type=int, default=120,
                        help="seconds before the time limit at which submitit requeues the job")
    parser.add_argument("--requeue", action=argparse.BooleanOptionalAction, default=True,
                        help="requeue on preemption or time-out (needs TRAIN.AUTO_RESUME True)")
    parser.add_argument("--cluster", default=None, choices=[None, "slurm", "local", "debug"],
                        help="submitit executor (default: SLURM when available)")
    args, args.overrides = parse_with_overrides(parser, argv)  # the rest: KEY VALUE config overrides
    return args


def config_opts(args: argparse.Namespace) -> List[str]:
    """The overrides each task loads: the user's, then the allocation's NUM_SHARDS / NUM_GPUS."""
    return [*args.overrides, "NUM_SHARDS", str(args.nodes), "NUM_GPUS", str(args.gpus_per_node)]


def executor_parameters(args: argparse.Namespace) -> Dict[str, Any]:
    """submitit's `update_parameters` for the allocation: one task per GPU on each node."""
    parameters: Dict[str, Any] = {
        "name": args.job_name,
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "tasks_per_node": max(1, args.gpus_per_node),
        "cpus_per_task": args.cpus_per_task,
        "timeout_min": args.time,
        "slurm_signal_delay_s": args.signal_delay_s,
    }
    if args.partition:
        parameters["slurm_partition"] = args.partition
    if args.mem_gb:
        parameters["mem_gb"] = args.mem_gb
    if args.requeue:
        parameters["slurm_additional_parameters"] = {"requeue": True}
    return parameters


def submit(args: argparse.Namespace) -> Any:
    """Check the config, then submit a SlurmTask; returns submitit's Job."""
    opts = config_opts(args)
    cfg = load_config(args.cfg_file, opts)
    if args.requeue and not cfg.TRAIN.AUTO_RESUME:
        raise ConfigError("--requeue needs TRAIN.AUTO_RESUME True, else a requeued job starts again from epoch 1; "
                          "set it or pass --no-requeue")
    jobs = [job for job, on in ((train, cfg.TRAIN.ENABLE), (run_test, cfg.TEST.ENABLE)) if on]
    folder = os.path.join(cfg.OUTPUT_DIR, SLURM_DIR, "%j")
    executor = import_submitit().AutoExecutor(folder=folder, cluster=args.cluster)
    executor.update_parameters(**executor_parameters(args))
    job = executor.submit(SlurmTask(args.cfg_file, opts, jobs, args.port))
    logger.info("submitted job %s: %d node(s) x %d GPU(s), output in %s", job.job_id, args.nodes,
                args.gpus_per_node, cfg.OUTPUT_DIR)
    return job


def run(argv) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        submit(parse_args(argv))
    except ImportError as error:  # submitit missing
        raise UsageError(str(error)) from error
    return 0


def main(argv=None) -> int:
    return run_tool(run, argv)


if __name__ == "__main__":
    sys.exit(main())
