"""The command line the tools share (slowmask/utils/tool_args.py): --debug in every
tool's --help, an unknown --option among config overrides refused with the closest
option, counts and output paths checked before anything is built."""

import argparse
import os
import re

import pytest
from tool_scripts import DEMO_CFG, REPO, load_tool

from slowmask.utils.errors import UsageError
from slowmask.utils.tool_args import check_output_file, check_output_folder, positive_int

TOOLS = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "tools")) if name.endswith(".py"))
# The tools that end through run_tool, which takes --debug out of their arguments.
DEBUG_TOOLS = [name for name in TOOLS if "run_tool(" in open(os.path.join(REPO, "tools", f"{name}.py")).read()]


def test_the_tools_that_take_debug_are_found():
    assert {"run_net", "probe", "export", "visualize", "model_info", "extract_features", "submit"} <= set(DEBUG_TOOLS)


@pytest.mark.parametrize("tool", DEBUG_TOOLS)
def test_every_tool_that_takes_debug_lists_it_in_its_help(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).parse_args(["--help"])
    assert exit_info.value.code == 0
    # In the list of options, not only in the description (run_net's names it).
    assert re.search(r"^  --debug +on an expected error, show its traceback", capsys.readouterr().out, re.MULTILINE)


# (tool, its arguments but the mistyped option, the mistake, the option suggested)
MISTAKES = [
    ("probe", ["--cfg", DEMO_CFG], "--weights", "--checkpoint"),
    ("export", ["--cfg", DEMO_CFG, "--output", "m.pt2"], "--checkpoint", "--weights"),
    ("visualize", ["--cfg", DEMO_CFG], "--clips=3", "--num-clips"),
    ("model_info", ["--cfg", DEMO_CFG], "--no-flop-count", "--no-flops"),
    ("extract_features", ["--cfg", DEMO_CFG, "--checkpoint", "c.pyth", "--videos", "v.txt", "--out", "o"],
     "--per-tokens", "--per-token"),
    ("submit", ["--cfg", DEMO_CFG], "--gpus-per-node", "--gpus_per_node"),
    ("run_net", ["--cfg", DEMO_CFG], "--chek", "--check"),
    ("benchmark", ["--cfg", DEMO_CFG], "--repeat-count", "--repeats"),
]


@pytest.mark.parametrize("tool, argv, mistake, suggested", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_an_unknown_option_among_overrides_is_a_usage_error_with_the_closest_option(tool, argv, mistake, suggested,
                                                                                    capsys):
    # Before, among and after KEY VALUE overrides alike.
    for words in ([mistake, "x", "RNG_SEED", "1"], ["RNG_SEED", "1", mistake, "x"]):
        with pytest.raises(SystemExit) as exit_info:
            load_tool(tool).main([*argv, *words])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"error: unknown option {mistake}: did you mean {suggested}? the options are --cfg, " in error
        assert "unknown config key" not in error


def test_an_unknown_option_like_no_other_gets_no_suggestion(capsys):
    with pytest.raises(SystemExit):
        load_tool("probe").main(["--cfg", DEMO_CFG, "--zzz"])
    error = capsys.readouterr().err
    assert "unknown option --zzz: the options are --cfg, --checkpoint, --eval-split, --probes, --pooling, --pixels, --json, --out;" in error


def test_overrides_still_reach_the_config():
    args = load_tool("export").parse_args(["--cfg", "c.yaml", "MODEL.NUM_CLASSES", "7", "--output", "m.pt2",
                                           "SOLVER.BASE_LR", "-0.5"])
    assert (args.output, args.opts) == ("m.pt2", ["MODEL.NUM_CLASSES", "7", "SOLVER.BASE_LR", "-0.5"])


@pytest.mark.parametrize("text, message", [("-3", "-3 is not a count: give 1 or more"), ("0", "0 is not a count"),
                                           ("two", "'two' is not a whole number")])
def test_a_count_is_a_whole_number_of_at_least_one(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        positive_int(text)
    assert positive_int("3") == 3


def test_an_output_file_naming_a_folder_or_in_a_missing_one_is_refused(tmp_path):
    with pytest.raises(UsageError, match=f"--output {tmp_path} is a folder: name the file to write in it"):
        check_output_file(str(tmp_path), "--output")
    with pytest.raises(UsageError, match=f"the folder {tmp_path / 'missing'} does not exist"):
        check_output_file(str(tmp_path / "missing" / "m.pt2"), "--output")
    check_output_file(str(tmp_path / "missing" / "deeper" / "m.json"), "--json", folder_may_be_missing=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="does not exist \\(or is not a folder\\)"):
        check_output_file(str(tmp_path / "file" / "m.json"), "--json", folder_may_be_missing=True)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_an_output_folder_naming_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="--out .*file is a file, not a folder"):
        check_output_folder(str(tmp_path / "file"), "--out")
    check_output_folder(str(tmp_path / "new"), "--out")
    check_output_folder("", "--out")
