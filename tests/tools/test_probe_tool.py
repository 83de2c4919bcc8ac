"""tools/probe.py: k-NN, linear and attentive top-1 of a checkpoint or of random
initialization, with chance; tools/demo_summary.py: the demo's table."""

import json

import pytest
import torch

from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask import checkpoint
from slowmask.config import load_config
from slowmask.engine.probe import ProbeSet, build_probe_clips, build_probes, encode_probe_set, probe_scores

# Small probes: the demo's 16 training videos are the labelled set, its 4 val videos scored.
QUICK = ["PROBE.KNN_K", "4", "PROBE.LINEAR_MAX_ITERS", "20", "PROBE.ATTENTIVE_EPOCHS", "5"]
# 4 scored videos: every top-1 is a whole number of them.
QUARTERS = (0.0, 25.0, 50.0, 75.0, 100.0)


def test_probes_a_checkpoint_and_random_initialization(tiny_run, demo_data_dir, tmp_path, capsys):
    tool = load_tool("probe")
    figures = {}
    for name, weights in (("random", []), ("trained", ["--checkpoint", checkpoint.last_checkpoint(tiny_run)])):
        out = tmp_path / f"{name}.json"
        argv = ["--cfg", DEMO_CFG, *weights, "--eval-split", "val", "--json", str(out),
                *demo_overrides(demo_data_dir, str(tmp_path)), *QUICK]
        assert tool.main(argv) == 0
        figures[name] = json.loads(out.read_text())
        assert set(figures[name]) == {"chance", "majority_baseline", "knn", "linear", "attentive", "pooling", "views"}
        assert (figures[name]["pooling"], figures[name]["views"]) == ("mean", [1, 1])
        assert figures[name]["chance"] == figures[name]["majority_baseline"] == 25.0  # one val video per class
        assert all(figures[name][key] in QUARTERS for key in ("knn", "linear", "attentive")), figures
    table = capsys.readouterr().out
    assert "knn" in table and "attentive" in table and "chance        25.00" in table and "majority      25.00" in table


def test_random_initialization_repeats_with_its_seed(demo_data_dir, tmp_path):
    tool = load_tool("probe")
    runs = []
    for number in range(2):
        out = tmp_path / f"{number}.json"
        argv = ["--cfg", DEMO_CFG, "--eval-split", "val", "--probes", "knn", "linear", "--json", str(out),
                *demo_overrides(demo_data_dir, str(tmp_path)), *QUICK]
        assert tool.main(argv) == 0
        runs.append(json.loads(out.read_text()))
    assert runs[0] == runs[1]


def test_pixels_are_probed_as_the_flattened_views_of_the_loader(demo_data_dir, tmp_path):
    out = tmp_path / "pixels.json"
    overrides = [*demo_overrides(demo_data_dir, str(tmp_path)), *QUICK]
    argv = ["--cfg", DEMO_CFG, "--pixels", "--probes", "knn", "linear", "--eval-split", "val", "--json", str(out),
            *overrides]
    assert load_tool("probe").main(argv) == 0
    figures = json.loads(out.read_text())
    cfg = load_config(DEMO_CFG, overrides)
    sets = []
    for split in (cfg.PROBE.TRAIN_SPLIT, "val"):
        clips, labels = build_probe_clips(cfg, split)
        views = torch.stack([clips[i]["clip"] for i in range(len(clips))])
        assert views.shape[1:] == (3, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TRAIN_CROP_SIZE)
        encoded = encode_probe_set(load_tool("probe").Pixels(), clips, labels, torch.device("cpu"))
        torch.testing.assert_close(encoded.pooled, views.flatten(1), rtol=0, atol=0)
        sets.append(ProbeSet(pooled=views.flatten(1), labels=torch.as_tensor(labels)))
    probes = build_probes(cfg, linear=True)
    expected = probe_scores(*sets, 4, {name: probes[name] for name in ("knn", "linear")})
    assert {key: figures[key] for key in ("knn", "linear", "pooling")} == {
        "knn": round(expected["knn"], 4), "linear": round(expected["linear"], 4), "pooling": "pixels"}


@pytest.mark.parametrize("option", [["--checkpoint", "ck.pyth"], ["--pooling", "cls"]])
def test_pixels_take_no_checkpoint_and_no_pooling(option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("probe").parse_args(["--cfg", "c.yaml", "--pixels", *option])
    assert exit_info.value.code == 2
    assert "--pixels probes the views' pixels: it takes neither --checkpoint nor --pooling" in capsys.readouterr().err


def test_overrides_may_follow_the_probe_names():
    args = load_tool("probe").parse_args(["--cfg", "c.yaml", "--probes", "knn", "linear", "PROBE.KNN_K", "5",
                                          "--json", "out.json", "RNG_SEED", "3"])
    assert (args.probes, args.json) == (["knn", "linear"], "out.json")
    assert args.overrides == ["PROBE.KNN_K", "5", "RNG_SEED", "3"]


def test_probes_without_a_probe_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("probe").parse_args(["--cfg", "c.yaml", "--probes", "PROBE.KNN_K", "5"])
    assert exit_info.value.code == 2
    assert "--probes needs at least one of knn, linear, attentive" in capsys.readouterr().err


def test_a_missing_checkpoint_fails_clearly(demo_data_dir, tmp_path, capsys):
    argv = ["--cfg", DEMO_CFG, "--checkpoint", str(tmp_path / "none.pyth"),
            *demo_overrides(demo_data_dir, str(tmp_path))]
    assert load_tool("probe").main(argv) == 4  # checkpoint
    assert "checkpoint not found" in capsys.readouterr().err


def write_demo_outputs(demo_out, figures):
    for name, (probe_file, finetune_dir) in (("random_init", ("probe_random_init.json", "finetune_random_init")),
                                             ("pretrained", ("probe_pretrained.json", "finetune"))):
        knn, linear, finetune = figures[name]
        (demo_out / probe_file).write_text(json.dumps({"chance": 25.0, "knn": knn, "linear": linear}))
        (demo_out / finetune_dir).mkdir()
        (demo_out / finetune_dir / "test_results.json").write_text(json.dumps({"top1": finetune}))


def test_demo_summary_writes_the_table_of_both_initializations(tmp_path, capsys):
    write_demo_outputs(tmp_path, {"random_init": (30.0, 35.0, 40.0), "pretrained": (55.0, 60.0, 50.0)})
    assert load_tool("demo_summary").main([str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == {"chance": 25.0, "random_init": {"knn": 30.0, "linear": 35.0, "finetune": 40.0},
                       "pretrained": {"knn": 55.0, "linear": 60.0, "finetune": 50.0}}
    gain = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gain")]
    assert gain[0].split() == ["gain", "+25.00", "+25.00", "+10.00"]


def test_demo_summary_adds_the_raw_pixels_row_when_they_were_probed(tmp_path, capsys):
    write_demo_outputs(tmp_path, {"random_init": (30.0, 35.0, 40.0), "pretrained": (55.0, 60.0, 50.0)})
    (tmp_path / "probe_pixels.json").write_text(json.dumps({"chance": 25.0, "knn": 70.0, "linear": 75.0,
                                                            "pooling": "pixels"}))
    assert load_tool("demo_summary").main([str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["raw_pixels"] == {"knn": 70.0, "linear": 75.0}
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("raw_pixels")]
    assert row[0].split() == ["raw_pixels", "70.00", "75.00"]


def test_demo_summary_names_what_is_missing(tmp_path, capsys):
    assert load_tool("demo_summary").main([str(tmp_path)]) == 3  # data
    assert "probe_random_init.json is missing" in capsys.readouterr().err
