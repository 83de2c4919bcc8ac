"""Runs several tools/run_net.py jobs one after the other in the same processes (under
torchrun), so that the multi-process tests pay for the processes' start once:
`torchrun ... run_jobs.py JOBS.json`, JOBS a list of {"argv": run_net's arguments,
"status": the exit status expected, "sigterm_after": a path or null}. With
"sigterm_after", each process sends itself SIGTERM once that path exists, as SLURM
signals every task of a job it preempts. Exits 1 naming the first job whose status
differs, else 0."""

import importlib.util
import json
import os
import signal
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_run_net():
    spec = importlib.util.spec_from_file_location("slowmask_tool_run_net", os.path.join(REPO, "tools", "run_net.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sigterm_when_exists(path: str) -> None:
    """SIGTERM to this process as soon as `path` exists (a thread polling every 10 ms)."""
    def watch() -> None:
        while not os.path.exists(path):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main(jobs_file: str) -> int:
    with open(jobs_file) as f:
        jobs = json.load(f)
    run_net = load_run_net()
    for job in jobs:
        if job.get("sigterm_after"):
            sigterm_when_exists(job["sigterm_after"])
        status = run_net.main(job["argv"])
        if status != job.get("status", 0):
            print(f"job {job['argv']} ended with status {status}, not {job.get('status', 0)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
