"""Preparing lists from official Kinetics CSVs and from class folders; resuming."""

import json
import os

import av
import numpy as np
import pytest

from slowmask.data.video_writer import write_video
from slowmask.prepare import entries_from_annotations, entries_from_folders, prepare_dataset, read_kinetics_annotations


def small_video(path, value: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_video(str(path), np.full((6, 40, 56, 3), value, dtype=np.uint8), fps=10)


@pytest.fixture
def kinetics_download(tmp_path):
    """A download folder (one video corrupt, one never downloaded) and its official CSVs."""
    videos = tmp_path / "download"
    rows = {"train": [("abseiling", "aaaaaaaaaaa", 10), ("zumba", "bbbbbbbbbbb", 0), ("zumba", "ccccccccccc", 4)],
            "validate": [("abseiling", "ddddddddddd", 30), ("zumba", "missingvid1", 1)]}
    csvs = []
    for split, clips in rows.items():
        csv_path = tmp_path / f"{split}.csv"
        lines = ["label,youtube_id,time_start,time_end,split"]
        for number, (label, yid, start) in enumerate(clips):
            lines.append(f"{label},{yid},{start},{start + 10},{split}")
            if yid != "missingvid1":
                small_video(videos / split / label / f"{yid}_{start:06d}_{start + 10:06d}.mp4", 40 * number)
        csv_path.write_text("\n".join(lines) + "\n")
        csvs.append(str(csv_path))
    (videos / "train" / "zumba" / "ccccccccccc_000004_000014.mp4").write_bytes(b"truncated")
    return str(videos), csvs


def test_official_csvs_give_lists_classes_and_reports(kinetics_download, tmp_path):
    videos, csvs = kinetics_download
    out = tmp_path / "prepared"
    report = prepare_dataset(entries_from_annotations(csvs, videos), str(out), short_side=20, jobs=1)
    assert json.loads((out / "classids.json").read_text()) == {"abseiling": 0, "zumba": 1}
    train = [line.split() for line in (out / "train.csv").read_text().splitlines()]
    assert [(os.path.basename(p), int(label)) for p, label in train] == [
        ("aaaaaaaaaaa_000010_000020.mp4", 0), ("bbbbbbbbbbb_000000_000010.mp4", 1)]
    assert [line.split()[1] for line in (out / "val.csv").read_text().splitlines()] == ["0"]
    assert (out / "missing.txt").read_text() == "val zumba missingvid1_000001_000011\n"
    assert "ccccccccccc_000004_000014.mp4" in (out / "unreadable.txt").read_text()
    with av.open(train[0][0]) as container:  # re-encoded: short side 20 (40 x 56 -> 20 x 28)
        stream = container.streams.video[0]
        assert (stream.height, stream.width) == (20, 28)
    assert (report.processed, report.reused) == (4, 0)


def test_a_second_run_does_no_work(kinetics_download, tmp_path):
    videos, csvs = kinetics_download
    out = tmp_path / "prepared"
    entries = entries_from_annotations(csvs, videos)
    prepare_dataset(entries, str(out), short_side=20, jobs=2)
    encoded = sorted(str(p) for p in (out / "videos").rglob("*.mp4"))
    stamps = [os.stat(p).st_mtime_ns for p in encoded]
    lists = (out / "train.csv").read_text()
    report = prepare_dataset(entries, str(out), short_side=20, jobs=2)
    assert (report.processed, report.reused) == (0, 4)
    assert [os.stat(p).st_mtime_ns for p in encoded] == stamps
    assert (out / "train.csv").read_text() == lists
    os.remove(encoded[0])  # a lost output is made again, and only that one
    assert prepare_dataset(entries, str(out), short_side=20).processed == 1


def test_folder_per_class_layout(tmp_path):
    for label in ("cats", "dogs"):
        for number in range(2):
            small_video(tmp_path / "videos" / label / f"{label}{number}.mp4", 100)
    report = prepare_dataset(entries_from_folders(str(tmp_path / "videos")), str(tmp_path / "out"))
    assert report.classes == ["cats", "dogs"] and list(report.lists) == ["train"]
    labels = [line.split()[1] for line in (tmp_path / "out" / "train.csv").read_text().splitlines()]
    assert labels == ["0", "0", "1", "1"]


def test_bad_inputs_are_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,youtube_id,split\nx,y,train\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_kinetics_annotations(str(bad))
    bad.write_text("label,youtube_id,time_start,time_end,split\nx,y,0,10,holdout\n")
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        read_kinetics_annotations(str(bad))
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        entries_from_annotations([], str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos in"):
        entries_from_folders(str(tmp_path / "empty"))
