"""tools/extract_features.py --pooling: the rows are the pooling asked, store.json names it,
a store of another pooling is never mixed with, a pooling the model cannot give is refused
before anything is written."""

import json
import os

import numpy as np
import pytest
from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask import checkpoint


@pytest.fixture
def listing(demo_data_dir, tmp_path):
    videos = [line.split()[0] for line in open(os.path.join(demo_data_dir, "val.csv"))]
    path = tmp_path / "list.txt"
    path.write_text("\n".join(videos) + "\n")
    return path


def extract(tiny_run, demo_data_dir, inputs, out, *extra):
    argv = ["--cfg", DEMO_CFG, "--checkpoint", checkpoint.last_checkpoint(tiny_run), "--videos", str(inputs),
            "--out", str(out), *extra, *demo_overrides(demo_data_dir, tiny_run)]
    return load_tool("extract_features").main(argv)


def error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_concatenated_last_blocks_are_written_and_named(tiny_run, demo_data_dir, listing, tmp_path, capsys):
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, listing, out, "--pooling", "concat_last_k", "--per-token",
                   "PROBE.POOL_LAST_K", "3") == 0
    features = np.load(out / "features.npy")
    assert features.shape == (4, 3 * 64)  # the demo encoder's last 3 blocks, width 64 each
    assert json.loads((out / "store.json").read_text())["settings"]["pooling"] == "concat_last_3"
    first = sorted(os.listdir(out / "tokens"))[0]
    tokens = np.load(out / "tokens" / first)
    assert tokens.shape == (4 * 8 * 8, 3 * 64)
    np.testing.assert_allclose(np.load(out / "pooled" / first), tokens.mean(axis=0), atol=1e-5, rtol=0)
    # Another pooling into the same folder is refused: its rows would mix with these.
    assert extract(tiny_run, demo_data_dir, listing, out, "--pooling", "cls") == 6  # output
    assert "pooling: 'concat_last_3' then, 'cls' now" in error_line(capsys)
    np.testing.assert_array_equal(np.load(out / "features.npy"), features)


def test_a_pooling_the_model_cannot_give_is_refused_before_anything_is_written(tiny_run, demo_data_dir, listing,
                                                                               tmp_path, capsys):
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, listing, out, "--pooling", "mean_last_k") == 2  # PROBE.POOL_LAST_K 4
    assert "the last 3 share one stage; set PROBE.POOL_LAST_K to at most 3" in error_line(capsys)
    assert not {"store.json", "features.npy", "pooled", "tokens"} & set(os.listdir(out))
