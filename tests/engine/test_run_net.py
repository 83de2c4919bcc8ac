"""The entry point's command line: overrides, and clear errors before any work."""

import os
import subprocess
import sys

import pytest
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")

DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def test_overrides_with_and_without_opts():
    args = run_net.parse_args(["--cfg", DEMO_CFG, "--num_shards", "1", "DATA.NUM_FRAMES", "8", "RNG_SEED", "3"])
    assert run_net.config_from_args(args).RNG_SEED == 3
    args = run_net.parse_args(["--cfg", DEMO_CFG, "--opts", "RNG_SEED", "4"])
    assert run_net.config_from_args(args).RNG_SEED == 4


@pytest.mark.parametrize(
    "opts, message",
    [
        (["DATA.NUM_FRAME", "8"], "unknown config key DATA.NUM_FRAME .*did you mean DATA.NUM_FRAMES"),
    ],
)
def test_config_errors_exit_2_with_message(capsys, opts, message):
    assert run_net.main(["--cfg", DEMO_CFG, *opts]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_missing_config_file_from_the_command_line():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "run_net.py"), "--cfg", "missing.yaml"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "config file not found: missing.yaml" in result.stderr
