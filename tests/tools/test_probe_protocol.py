"""tools/probe.py with V-JEPA 2's protocol: a grid of attentive heads, the best named;
several views per scored video; the pooling named in the output."""

import json

from tool_scripts import DEMO_CFG, demo_overrides, load_tool

QUICK = ["PROBE.KNN_K", "4", "PROBE.ATTENTIVE_EPOCHS", "3", "PROBE.TRAIN_MAX_ITEMS", "8"]
QUARTERS = (0.0, 25.0, 50.0, 75.0, 100.0)  # 4 scored videos


def run_probe(demo_data_dir, tmp_path, *args):
    out = tmp_path / "probe.json"
    argv = ["--cfg", DEMO_CFG, "--eval-split", "val", "--json", str(out), *args,
            *demo_overrides(demo_data_dir, str(tmp_path)), *QUICK]
    status = load_tool("probe").main(argv)
    return status, json.loads(out.read_text()) if out.exists() else None


def test_a_grid_of_blocks_heads_reports_the_best_with_its_settings(demo_data_dir, tmp_path, capsys):
    status, figures = run_probe(
        demo_data_dir, tmp_path, "--probes", "attentive", "PROBE.ATTENTIVE_POOLER", "blocks",
        "PROBE.ATTENTIVE_DEPTH", "2", "PROBE.ATTENTIVE_HEADS", "2", "PROBE.ATTENTIVE_LRS", "[0.01, 0.0001]",
        "PROBE.ATTENTIVE_WEIGHT_DECAYS", "[0.01, 0.4]")
    assert status == 0
    heads = figures["attentive_heads"]
    assert [(head["lr"], head["weight_decay"]) for head in heads] == [(0.01, 0.01), (0.0001, 0.01), (0.01, 0.4),
                                                                      (0.0001, 0.4)]
    assert all(head["top1"] in QUARTERS for head in heads)
    best = max(heads, key=lambda head: head["top1"])  # the first of equal ones
    assert figures["attentive"] == best["top1"]
    assert figures["attentive_best"] == {"lr": best["lr"], "weight_decay": best["weight_decay"]}
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("attentive"))
    assert row == (f"attentive  {best['top1']:>8.2f}  (best of 4 heads: lr {best['lr']:g}, "
                   f"weight_decay {best['weight_decay']:g})")


def test_an_unknown_attentive_pooler_is_refused_before_encoding(demo_data_dir, tmp_path, capsys):
    status, figures = run_probe(demo_data_dir, tmp_path, "PROBE.ATTENTIVE_POOLER", "perceiver")
    assert (status, figures) == (2, None)  # config; no json written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PROBE.ATTENTIVE_POOLER is 'perceiver'; supported: 'query', 'blocks'" in err[0]


def test_the_pooling_is_named_in_the_figures(demo_data_dir, tmp_path):
    status, figures = run_probe(demo_data_dir, tmp_path, "--probes", "knn", "--pooling", "cls")
    assert status == 0
    assert (figures["pooling"], figures["views"]) == ("cls", [1, 1])
    assert figures["knn"] in QUARTERS


def test_a_penalty_chosen_by_cross_validation_is_named_in_the_figures_and_the_table(demo_data_dir, tmp_path, capsys):
    status, figures = run_probe(demo_data_dir, tmp_path, "--probes", "linear", "PROBE.LINEAR_L2S", "[0.1, 0.001]",
                                "PROBE.LINEAR_FOLDS", "2")
    assert status == 0
    assert figures["linear_best"]["l2"] in (0.1, 0.001) and "linear_heads" not in figures
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("linear"))
    assert row == f"linear     {figures['linear']:>8.2f}  (l2 {figures['linear_best']['l2']:g})"
