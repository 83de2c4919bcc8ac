"""tools/extract_features.py: one row per input, resumable, unreadable inputs listed and
counted in the exit status, features of other weights never mixed in, one writer."""

import csv
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image
from tool_scripts import DEMO_CFG, demo_overrides, load_tool

from slowmask import checkpoint
from slowmask.utils.output_files import RunLock


@pytest.fixture
def videos(demo_data_dir):
    return [line.split()[0] for line in open(os.path.join(demo_data_dir, "val.csv"))]


def extract(tiny_run, demo_data_dir, inputs, out, *extra, weights=None):
    argv = ["--cfg", DEMO_CFG, "--checkpoint", weights or checkpoint.last_checkpoint(tiny_run), "--videos",
            str(inputs), "--out", str(out), *extra, *demo_overrides(demo_data_dir, tiny_run)]
    return load_tool("extract_features").main(argv)


def last_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_one_row_per_video_and_an_unreadable_one_counted_in_the_status(tiny_run, demo_data_dir, videos, tmp_path,
                                                                       capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(videos + [str(broken)]) + "\n")
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, listing, out, "--per-token", "--batch-size", "3") == 3  # data
    assert last_error_line(capsys).startswith(f"DataError: 1 of 5 inputs could not be read ({broken}; first: ")
    features = np.load(out / "features.npy")
    assert features.shape == (len(videos), 64) and np.isfinite(features).all()
    with open(out / "index.csv") as f:
        assert [row["path"] for row in csv.DictReader(f)] == videos
    assert (out / "failed.txt").read_text().startswith(f"{broken}\tDecodeError: ")
    tokens = np.load(out / "tokens" / os.listdir(out / "tokens")[0])
    assert tokens.shape == (4 * 8 * 8, 64)  # the prediction grid of the demo model
    log = (out / "stdout.log").read_text()
    assert f"loaded weights from {checkpoint.last_checkpoint(tiny_run)} (epoch 1)" in log and "resumed" not in log
    stamps = {name: os.stat(out / "pooled" / name).st_mtime_ns for name in os.listdir(out / "pooled")}
    assert extract(tiny_run, demo_data_dir, listing, out, "--per-token", "--batch-size", "3") == 3
    assert {name: os.stat(out / "pooled" / name).st_mtime_ns for name in os.listdir(out / "pooled")} == stamps
    second_run = (out / "stdout.log").read_text()[len(log):]
    assert f"WARNING] slowmask.features.store: reusing the features of {len(videos)} input(s) in {out}" in second_run
    assert f"encoded 0 inputs now, {len(videos)} earlier; {len(videos)} rows" in second_run
    assert "1 of 5 inputs could not be read" in second_run  # the traceback of the DataError


def test_a_store_of_another_checkpoint_is_refused_then_overwritten_on_request(tiny_run, demo_data_dir, videos,
                                                                              tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(videos) + "\n")
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, listing, out) == 0
    before = np.load(out / "features.npy")
    state = torch.load(checkpoint.last_checkpoint(tiny_run), weights_only=True)
    state["model_state"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in state["model_state"].items()}
    other = str(tmp_path / "other.pyth")
    torch.save(state, other)
    assert extract(tiny_run, demo_data_dir, listing, out, weights=other) == 6  # output
    line = last_error_line(capsys)
    assert f"{out} holds features made otherwise (the weights: {checkpoint.last_checkpoint(tiny_run)} (" in line
    assert f"then, {other} (" in line and line.endswith("give another --out, or pass --overwrite to delete them "
                                                       f"and start over (traceback in {out / 'stdout.log'})")
    assert np.array_equal(np.load(out / "features.npy"), before)
    assert extract(tiny_run, demo_data_dir, listing, out, "DATA.MEAN", "[0.5,0.5,0.5]") == 6
    assert "DATA.MEAN: [0.45, 0.45, 0.45] then, [0.5, 0.5, 0.5] now" in last_error_line(capsys)
    assert extract(tiny_run, demo_data_dir, listing, out, "--overwrite", weights=other) == 0
    after = np.load(out / "features.npy")
    assert after.shape == before.shape and np.abs(after - before).max() > 1e-3 * np.abs(before).max()
    assert json.loads((out / "store.json").read_text())["weights"]["path"] == other


def test_relative_list_paths_are_read_from_the_lists_folder(tiny_run, demo_data_dir, videos, tmp_path, monkeypatch,
                                                            capsys):
    shutil.copytree(os.path.dirname(videos[0]), tmp_path / "data" / "clips")
    names = [os.path.basename(v) for v in videos]
    listing = tmp_path / "data" / "list.txt"
    listing.write_text("".join(f"clips/{name} 0\n" for name in names))
    monkeypatch.chdir(tmp_path)  # not the list's folder
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, listing, out) == 0
    with open(out / "index.csv") as f:
        assert [row["path"] for row in csv.DictReader(f)] == [str(tmp_path / "data" / "clips" / n) for n in names]
    listing.write_text("".join(f"elsewhere/{name} 0\n" for name in names))
    assert extract(tiny_run, demo_data_dir, listing, tmp_path / "none") == 3
    line = last_error_line(capsys)
    assert line.startswith(f"DataError: 4 of 4 inputs could not be read ({tmp_path}/data/elsewhere/{names[0]}, ")
    assert line.split(" (traceback in")[0].endswith(f"all are in {tmp_path}/none/failed.txt, no input has features")
    assert f"first: FileNotFoundError: video not found: {tmp_path}/data/elsewhere/{names[0]})" in line
    assert not os.path.exists(tmp_path / "none" / "features.npy")


def test_a_folder_of_videos_and_images(tiny_run, demo_data_dir, videos, tmp_path):
    folder = tmp_path / "media"
    shutil.copytree(os.path.dirname(videos[0]), folder / "videos")
    Image.fromarray(np.full((70, 90, 3), 128, dtype=np.uint8)).save(folder / "still.jpg")
    (folder / "readme.txt").write_text("not an input")
    out = tmp_path / "features"
    assert extract(tiny_run, demo_data_dir, folder, out) == 0
    with open(out / "index.csv") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    assert paths == sorted([str(folder / "still.jpg")] + [str(folder / "videos" / os.path.basename(v)) for v in videos])
    assert np.load(out / "features.npy").shape == (len(videos) + 1, 64)


@pytest.mark.parametrize("case, status, message", [
    ("checkpoint folder", 4, "CheckpointError: --checkpoint {run}/checkpoints is a folder, not a checkpoint file: "
                             "name a file, e.g. its newest, {run}/checkpoints/checkpoint_epoch_00001.pyth"),
    ("out is a file", 2, "UsageError: --out {tmp}/taken is a file, not a folder: give a folder for the features"),
    ("batch size", 2, "UsageError: --batch-size -3: give a positive number of inputs per forward pass"),
    ("no checkpoint", 4, "CheckpointError: checkpoint not found: {tmp}/none.pyth"),
    ("out under a file", 6, "OutputError: cannot write into {tmp}/taken/features (NotADirectoryError: Not a "
                            "directory): give a folder this user can write"),
])
def test_arguments_that_cannot_work_end_in_one_line(tiny_run, demo_data_dir, tmp_path, capsys, case, status,
                                                    message):
    (tmp_path / "taken").write_text("a file")
    out = {"out is a file": tmp_path / "taken", "out under a file": tmp_path / "taken" / "features"}.get(
        case, tmp_path / "features")
    extra = ["--batch-size", "-3"] if case == "batch size" else []
    weights = {"checkpoint folder": os.path.join(tiny_run, "checkpoints"),
               "no checkpoint": str(tmp_path / "none.pyth")}.get(case)
    started = time.monotonic()
    assert extract(tiny_run, demo_data_dir, os.path.join(demo_data_dir, "val.csv"), out, *extra,
                   weights=weights) == status
    assert time.monotonic() - started < 2.0  # refused before the model is built
    assert last_error_line(capsys).startswith(message.format(run=tiny_run, tmp=tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["taken"]  # nothing written


def test_a_second_run_into_a_held_store_is_refused_naming_the_holder(tiny_run, demo_data_dir, tmp_path, capsys):
    out = tmp_path / "features"
    lock = RunLock(str(out))
    lock.acquire()  # the first run, writing
    try:
        assert extract(tiny_run, demo_data_dir, os.path.join(demo_data_dir, "val.csv"), out) == 6
    finally:
        lock.release()
    line = last_error_line(capsys)
    assert line.startswith(f"OutputDirInUse: {out} is being written by another run (pid {os.getpid()} on host ")
    assert line.endswith("wait for it to end, or give this run another --out (rerun with --debug to see the traceback)")
    assert os.listdir(out) == []  # neither a log nor features of the refused run
