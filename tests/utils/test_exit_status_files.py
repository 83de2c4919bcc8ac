"""Each torchrun rank keeps its own exit status in OUTPUT_DIR/exit_status/rank_RANK:
torchrun's own status is 1 whenever a rank fails, even when all stopped with 75."""

import pytest

from slowmask.utils.errors import SlowmaskError
from slowmask.utils.output_files import RUNNING, exit_status_file, recording_exit_status


class Preempted(SlowmaskError):
    kind = "preempted"


def status_after(tmp_path, rank, error=None) -> str:
    """The status file of `rank` after a body that raises `error` (None: ends normally),
    checking it reads "running" while the body runs."""
    path = exit_status_file(str(tmp_path), rank)
    try:
        with recording_exit_status(str(tmp_path), rank):
            assert open(path).read() == f"{RUNNING}\n"
            if error is not None:
                raise error
    except BaseException as raised:
        assert raised is error  # passed on, for run_tool to end with
    return open(path).read()


def test_each_rank_writes_the_status_it_ends_with(tmp_path):
    assert status_after(tmp_path, 0, Preempted("stopped by SIGTERM after writing a checkpoint")) == "75\n"
    assert status_after(tmp_path, 1, Preempted("stopped by SIGTERM after writing a checkpoint")) == "75\n"
    assert status_after(tmp_path, 2, ZeroDivisionError("a bug")) == "1\n"
    assert status_after(tmp_path, 3, KeyboardInterrupt()) == "1\n"
    assert status_after(tmp_path, 0) == "0\n"  # a rerun replaces the file
    assert sorted(p.name for p in (tmp_path / "exit_status").iterdir()) == [
        "rank_00000", "rank_00001", "rank_00002", "rank_00003"]


def test_the_file_of_a_rank_is_named_by_its_number(tmp_path):
    assert exit_status_file(str(tmp_path), 12) == str(tmp_path / "exit_status" / "rank_00012")
    with pytest.raises(ValueError):
        with recording_exit_status(str(tmp_path), 12):
            raise ValueError("not a slowmask error")
    assert (tmp_path / "exit_status" / "rank_00012").read_text() == "1\n"
