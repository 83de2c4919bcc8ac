"""Config files as people get them wrong: a _BASE_ loop, YAML syntax errors, a list at
the top, a folder for --cfg, counts below their least value. Each is one ConfigError
line naming the file (and the line), and `run_net` ends on it with the config status."""

import os

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.utils.errors import EXIT_STATUS
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")


def write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return str(path)


def problem(path, opts=()):
    with pytest.raises(ConfigError) as caught:
        load_config(path, list(opts))
    return str(caught.value)


def test_a_base_loop_names_the_chain(tmp_path):
    a = write(tmp_path, "a.yaml", "_BASE_: b.yaml\nDATA:\n  NUM_FRAMES: 4\n")
    write(tmp_path, "b.yaml", "_BASE_: [sub/c.yaml]\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "c.yaml", "_BASE_: ../a.yaml\n")
    chain = " -> ".join(str(tmp_path / name) for name in ("a.yaml", "b.yaml", "sub/c.yaml", "a.yaml"))
    assert problem(a) == f"_BASE_ files form a loop: {chain}; remove the _BASE_ that leads back"


def test_two_bases_sharing_one_are_no_loop_and_the_later_wins(tmp_path):
    write(tmp_path, "root.yaml", "DATA:\n  NUM_FRAMES: 4\n  SAMPLING_RATE: 2\n")
    write(tmp_path, "left.yaml", "_BASE_: root.yaml\nDATA:\n  SAMPLING_RATE: 3\n")
    write(tmp_path, "right.yaml", "_BASE_: root.yaml\nRNG_SEED: 7\n")
    cfg = load_config(write(tmp_path, "top.yaml", "_BASE_: [left.yaml, right.yaml]\nLOG_PERIOD: 5\n"))
    # right.yaml's root.yaml comes after left.yaml: its SAMPLING_RATE 2 wins, as fvcore merges.
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.RNG_SEED, cfg.LOG_PERIOD) == (4, 2, 7, 5)


def test_an_unknown_key_in_a_base_names_the_base(tmp_path):
    base = write(tmp_path, "base.yaml", "DATA:\n  NUM_FRAME: 4\n")
    assert problem(write(tmp_path, "top.yaml", "_BASE_: base.yaml\n")).startswith(
        f"unknown config key DATA.NUM_FRAME ({base}); did you mean DATA.NUM_FRAMES"
    )


@pytest.mark.parametrize("text, message", [
    ("DATA:\n  NUM_FRAMES: 4\n SAMPLING_RATE: 2\n",
     ", line 3, column 2: YAML syntax error: expected <block end>, but found '<block mapping start>'"),
    ("DATA: [1, 2\n", ", line 2, column 1: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    ("- DATA\n- 3\n", ": the top level must map sections to their keys (a line 'DATA:' and under it "
                      "'  NUM_FRAMES: 16'), got a list"),
])
def test_a_file_that_is_not_a_mapping_of_keys_names_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "bad.yaml", text)
    assert problem(path) == f"{path}{message}"


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("DATA:\n  PATH_PREFIX: caf\u00e9\n".encode("latin-1"))
    assert problem(str(path)) == f"{path}, line 2: not UTF-8 text (invalid continuation byte); save it as UTF-8"


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("DATA:\n  NUM_FRAMES: 4\n".encode("utf-8-sig"))
    assert load_config(str(path)).DATA.NUM_FRAMES == 4


def test_a_folder_for_a_file_points_at_a_file_in_it(tmp_path):
    write(tmp_path, "run.yaml", "RNG_SEED: 3\n")
    assert problem(str(tmp_path)) == (
        f"config file {tmp_path} is a folder; give the path of a .yaml file, e.g. {tmp_path / 'run.yaml'}"
    )
    top = write(tmp_path, "top.yaml", "_BASE_: nowhere.yaml\n")
    assert problem(top) == f"_BASE_ file not found: {tmp_path / 'nowhere.yaml'} (named by {top})"


@pytest.mark.parametrize("where", ["file", "base"])
def test_a_python_tag_is_refused_and_never_run(tmp_path, where):
    marker = tmp_path / "ran"
    tagged = write(tmp_path, "tagged.yaml", f'RNG_SEED: !!python/object/apply:os.system ["touch {marker}"]\n')
    path = tagged if where == "file" else write(tmp_path, "top.yaml", "_BASE_: tagged.yaml\n")
    assert problem(path) == (
        f"{tagged}, line 1, column 11: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'; tags that build Python objects are refused, "
        "write plain values"
    )
    assert not marker.exists()


def test_counts_below_their_least_value_are_reported_together():
    message = problem(FT_CFG, ["DATA_LOADER.NUM_WORKERS", "-1", "NUM_SHARDS", "0", "DATA.SAMPLING_RATE", "0",
                               "DATA_LOADER.NUM_RETRIES", "-2"])
    assert message.splitlines() == [
        "4 problems:",
        "  - DATA.SAMPLING_RATE must be at least 1 (frames between sampled frames), got 0",
        "  - DATA_LOADER.NUM_WORKERS must be at least 0 (worker processes; 0 loads in the training process), got -1",
        "  - DATA_LOADER.NUM_RETRIES must be at least 0 (other videos tried for an unreadable one; 0 fails at once), "
        "got -2",
        "  - NUM_SHARDS (--num_shards) is 0; it counts the machines of the job: 1 or more",
    ]


def test_an_empty_list_separator_is_refused():
    assert problem(FT_CFG, ["DATA.PATH_LABEL_SEPARATOR", ""]) == (
        "DATA.PATH_LABEL_SEPARATOR is empty; set it to the list's separator, e.g. ' ' or ','"
    )


def test_run_net_ends_on_a_bad_file_with_one_line_and_the_config_status(tmp_path, capsys):
    run_net = load_tool("run_net")

    loop = write(tmp_path, "loop.yaml", "_BASE_: loop.yaml\n")
    assert run_net.main(["--cfg", loop]) == EXIT_STATUS["config"]
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"ConfigError: _BASE_ files form a loop: {loop} -> {loop}; remove the _BASE_ that leads back "
        "(rerun with --debug to see the traceback)"
    ]
    assert run_net.main(["--cfg", FT_CFG, "DATA_LOADER.NUM_WORKERS", "-1"]) == EXIT_STATUS["config"]
    assert "DATA_LOADER.NUM_WORKERS must be at least 0" in capsys.readouterr().err


def test_a_run_that_fails_before_logging_leaves_its_traceback_in_no_earlier_runs_log(tmp_path, capsys):
    # An earlier run in this process logged to its own stdout.log; a later run that fails on its
    # config (before it sets up logging) must not append its traceback there.
    from slowmask.utils.logging import setup_logging

    earlier = tmp_path / "earlier"
    setup_logging(str(earlier))
    earlier_log = earlier / "stdout.log"
    before = earlier_log.read_text()
    loop = write(tmp_path, "loop.yaml", "_BASE_: loop.yaml\n")

    assert load_tool("run_net").main(["--cfg", loop]) == EXIT_STATUS["config"]

    assert capsys.readouterr().err.endswith("(rerun with --debug to see the traceback)\n")
    assert earlier_log.read_text() == before
