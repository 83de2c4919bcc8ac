"""Run logs: a human line per log period in OUTPUT_DIR/stdout.log and on the console,
and the same figures as one JSON object per line in OUTPUT_DIR/json_stats.log.

A full disk does not flood the console: a failed write to stdout.log is said once on
stderr (later records still try the file and reach the console), and a failed write to
json_stats.log ends the run with DiskFullError.
"""

import logging
import os
import sys
from typing import Any, Callable, Dict, Optional

import simplejson
from iopath.common.file_io import g_pathmgr

from .output_files import DiskFullError, disk_full_cause, free_bytes

JSON_STATS_FILE = "json_stats.log"
STDOUT_FILE = "stdout.log"
_FORMAT = "[%(asctime)s][%(levelname)s] %(name)s: %(message)s"

logger = logging.getLogger(__name__)

_log_file: Optional[str] = None  # the stdout.log the last setup_logging opened, if any
_DISK_FULL_ADVICE = "free space there, or move OUTPUT_DIR to a larger disk, then rerun: the run resumes from its last checkpoint"


class _LogFileHandler(logging.StreamHandler):
    """The stdout.log handler. logging's default answer to a failed write is a
    "--- Logging error ---" traceback on stderr per record; a full disk fails every
    record, so the failure is said once instead."""

    def __init__(self, stream, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        if not self.failed:
            self.failed = True
            sys.stderr.write(f"cannot write the log file {self.path}: {error.strerror or error}; "
                             "the log goes on on the console only until it can be written again\n")


def setup_logging(output_dir: Optional[str], is_main_process: bool = True) -> None:
    """Send slowmask's log records to the console and to OUTPUT_DIR/stdout.log (the
    console alone when `output_dir` is None). Processes other than the main one only
    log warnings and errors."""
    root = logging.getLogger("slowmask")
    root.setLevel(logging.INFO if is_main_process else logging.WARNING)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter(_FORMAT, datefmt="%m/%d %H:%M:%S"))
    root.addHandler(console)
    global _log_file
    _log_file = None
    if is_main_process and output_dir is not None:
        g_pathmgr.mkdirs(output_dir)
        _log_file = os.path.join(output_dir, STDOUT_FILE)
        stream = g_pathmgr.open(_log_file, "a", buffering=1)
        to_file = _LogFileHandler(stream, _log_file)
        to_file.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(to_file)


def current_log_file() -> Optional[str]:
    """The OUTPUT_DIR/stdout.log this process logs to (None: the console alone)."""
    return _log_file


def fresh_log_file() -> Callable[[], Optional[str]]:
    """Forget the log file of an earlier run in this process and return `current_log_file`:
    what a tool hands `run_tool`, so that an error before this run's `setup_logging` leaves its
    traceback in no other run's log."""
    global _log_file
    _log_file = None
    return current_log_file


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def write_json_stats(output_dir: str, stats: Dict[str, Any]) -> None:
    """Append `stats` as one JSON line to OUTPUT_DIR/json_stats.log."""
    line = simplejson.dumps({k: _rounded(v) for k, v in stats.items()}, sort_keys=False) + "\n"
    path = os.path.join(output_dir, JSON_STATS_FILE)
    try:
        with g_pathmgr.open(path, "a") as f:
            f.write(line)
    except OSError as error:
        if disk_full_cause(error) is None:
            raise
        raise DiskFullError(path, len(line), free_bytes(output_dir), _DISK_FULL_ADVICE) from error


def read_json_stats(output_dir: str) -> list:
    """All JSON objects of OUTPUT_DIR/json_stats.log, in order."""
    with g_pathmgr.open(os.path.join(output_dir, JSON_STATS_FILE), "r") as f:
        return [simplejson.loads(line) for line in f if line.strip()]
