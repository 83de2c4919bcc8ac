"""Config files are read bounded: a device, a FIFO or a file over MAX_CONFIG_BYTES is
refused unread, as --cfg or as a _BASE_, with one line and status 2, at once."""

import os
import time

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.config.loading import MAX_CONFIG_BYTES
from tool_scripts import load_tool

run_net = load_tool("run_net")


def refusal(path: str) -> (str, float):
    """load_config(path)'s message and the seconds it took to give it."""
    start = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value), time.monotonic() - start


def test_dev_zero_as_cfg_fails_at_once_with_status_2_and_one_line(capsys):
    start = time.monotonic()
    status = run_net.main(["--cfg", "/dev/zero", "--check"])
    seconds = time.monotonic() - start
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("ConfigError: config file /dev/zero is not a regular file (a device, FIFO or socket); "
                          "give the path of a .yaml file (")  # then where the traceback went
    assert seconds < 1.0


def test_a_fifo_named_by_base_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "base.yaml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    top = tmp_path / "top.yaml"
    top.write_text("_BASE_: base.yaml\n")
    message, seconds = refusal(str(top))
    assert message == (f"_BASE_ file {fifo} (named by {top}) is not a regular file (a device, FIFO or socket); "
                       "give the path of a .yaml file")
    assert seconds < 1.0


def test_dev_zero_as_base_is_refused(tmp_path):
    top = tmp_path / "top.yaml"
    top.write_text("_BASE_: /dev/zero\n")
    message, seconds = refusal(str(top))
    assert message.startswith(f"_BASE_ file /dev/zero (named by {top}) is not a regular file")
    assert seconds < 1.0


def test_a_file_over_the_limit_is_refused_unparsed_naming_the_limit(tmp_path):
    huge = tmp_path / "huge.yaml"
    values = ",".join(["0"] * (MAX_CONFIG_BYTES // 2 + 8))  # a list value YAML would parse for seconds
    huge.write_text(f"MVIT:\n  DIM_MUL: [{values}]\n")
    size = huge.stat().st_size
    message, seconds = refusal(str(huge))
    assert message == (f"config file {huge} has {size:,} bytes, more than the 1 MiB (1,048,576 bytes) a config "
                       "file may have; give the path of a .yaml file of settings")
    assert seconds < 1.0


def test_a_file_at_the_limit_is_read(tmp_path):
    padded = tmp_path / "padded.yaml"
    line = "SOLVER:\n  MAX_EPOCH: 3\n"
    padded.write_text(line + "#" * (MAX_CONFIG_BYTES - len(line) - 1) + "\n")
    assert padded.stat().st_size == MAX_CONFIG_BYTES
    assert load_config(str(padded)).SOLVER.MAX_EPOCH == 3
