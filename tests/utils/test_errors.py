"""One way to fail: expected errors end as one line and their kind's exit status."""

import signal

import pytest
from torch.multiprocessing import ProcessRaisedException

from slowmask.config import ConfigError
from slowmask.data import NoReadableVideoError
from slowmask.checkpoint import CheckpointError
from slowmask.engine.devices import DeviceError
from slowmask.engine.hooks import BadDataError, LossExplosionError, TrainingPreempted
from slowmask.engine.preflight import PreflightError
from slowmask.engine.step import NonFiniteLossError
from slowmask.utils.errors import DataError, StoppedBeforeStart, UsageError, expected_stop, run_tool

STATUSES = [
    (ConfigError("MVIT.DEPTH is wrong"), 2),
    (DeviceError("no GPU"), 2),
    (UsageError("bad argument"), 2),
    (PreflightError(["a list is missing"]), 3),
    (PreflightError(["TRAIN.CHECKPOINT_FILE_PATH x does not exist"], "checkpoint"), 4),
    (BadDataError("too much bad data"), 3),
    (NoReadableVideoError("nothing readable"), 3),
    (DataError("no such list"), 3),
    (CheckpointError("empty file"), 4),
    (NonFiniteLossError("the loss is nan"), 7),
    (LossExplosionError("the loss exploded"), 7),
    (TrainingPreempted("stopped by SIGTERM", None), 75),
    (StoppedBeforeStart(signal.SIGTERM, "SIGTERM"), 143),
    (StoppedBeforeStart(signal.SIGINT, "SIGINT"), 130),
]


def raising(error):
    def main(argv):
        raise error
    return main


@pytest.mark.parametrize("error, status", STATUSES, ids=[f"{type(e).__name__}-{s}" for e, s in STATUSES])
def test_each_kind_exits_with_its_status_and_one_line(error, status, tmp_path, capsys):
    log = tmp_path / "stdout.log"
    assert run_tool(raising(error), [], lambda: str(log)) == status
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{type(error).__name__}: {str(error).splitlines()[0]}")
    if status == 75:
        assert not log.exists()  # an orderly stop, not a failure: no traceback
    else:
        assert line.endswith(f"(traceback in {log})")
        assert "Traceback (most recent call last)" in log.read_text()


def test_debug_lets_the_traceback_through_and_bugs_keep_theirs():
    with pytest.raises(CheckpointError):
        run_tool(raising(CheckpointError("bad")), ["--debug"])
    with pytest.raises(KeyError):
        run_tool(raising(KeyError("a bug")), [])


def test_without_a_log_file_the_line_says_how_to_see_the_traceback(capsys):
    assert run_tool(raising(DataError("no such list")), []) == 3
    assert capsys.readouterr().err.strip() == "DataError: no such list (rerun with --debug to see the traceback)"


def test_an_error_of_a_spawned_process_is_found_by_its_name():
    text = ("\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n"
            '  File "x.py", line 1, in f\nslowmask.engine.hooks.BadDataError: 5 of 8 items were unreadable\n')
    assert expected_stop(ProcessRaisedException(text, 1, 1234)) == (3, "BadDataError: 5 of 8 items were unreadable")
    assert expected_stop(ProcessRaisedException("ZeroDivisionError: x", 1, 1234)) is None
