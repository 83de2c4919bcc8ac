"""tools/probe.py and tools/demo_summary.py report chance as 100 / K, as
test_results.json does, and the majority baseline under its own name."""

import json
import shutil

from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask.data.datasets.video_list import read_video_list


def test_on_an_unbalanced_split_chance_and_the_majority_baseline_differ(demo_data_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(f"{demo_data_dir}/train.csv", data / "train.csv")
    train = list(read_video_list(f"{demo_data_dir}/train.csv"))
    first = [path for path, label in train if label == 0][:3]
    others = [next(path for path, label in train if label == k) for k in (1, 2, 3)]
    (data / "unbalanced.csv").write_text("".join(f"{p} 0\n" for p in first) +
                                         "".join(f"{p} {k}\n" for p, k in zip(others, (1, 2, 3))))
    out = tmp_path / "probe.json"
    argv = ["--cfg", DEMO_CFG, "--eval-split", "unbalanced", "--probes", "knn", "--json", str(out),
            *demo_overrides(demo_data_dir, str(tmp_path)), "PROBE.PATH_TO_DATA_DIR", str(data), "PROBE.KNN_K", "4"]
    assert load_tool("probe").main(argv) == 0
    figures = json.loads(out.read_text())
    assert (figures["chance"], figures["majority_baseline"]) == (25.0, 50.0)  # 4 classes; 3 of the 6 videos
    table = capsys.readouterr().out.splitlines()
    assert table[-2:] == ["chance        25.00", "majority      50.00"]


def test_demo_summary_shows_chance_and_the_majority_baseline(tmp_path, capsys):
    for probe_file, finetune_dir in (("probe_random_init.json", "finetune_random_init"),
                                     ("probe_pretrained.json", "finetune")):
        (tmp_path / probe_file).write_text(json.dumps({"chance": 25.0, "majority_baseline": 50.0, "knn": 40.0}))
        (tmp_path / finetune_dir).mkdir()
        (tmp_path / finetune_dir / "test_results.json").write_text(json.dumps({"top1": 60.0, "chance": 25.0}))
    assert load_tool("demo_summary").main([str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["chance"], summary["majority_baseline"]) == (25.0, 50.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:-1] == ["chance           25.00", "majority         50.00"]
