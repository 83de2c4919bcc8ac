"""What an input list or folder names, what made a store, and one writer per store."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from slowmask.features import Producer, StoreOfOtherFeatures, WeightsFile, hold_store, media_inputs, open_store
from slowmask.features.store import MANIFEST
from slowmask.utils.output_files import OutputDirInUse, RunLock


def weights(tmp_path, content: bytes) -> WeightsFile:
    path = tmp_path / f"weights-{len(content)}.pyth"
    path.write_bytes(content)
    return WeightsFile.of(str(path))


def recorded_sha256(out: str) -> str:
    with open(os.path.join(out, MANIFEST)) as f:
        return json.load(f)["weights"]["sha256"]


def test_weights_are_the_same_by_content_not_by_path(tmp_path):
    first = weights(tmp_path, b"abc")
    copy = tmp_path / "copy.pyth"
    copy.write_bytes(b"abc")
    assert WeightsFile.of(str(copy)).sha256 == first.sha256 and first.size == 3
    assert Producer(WeightsFile.of(str(copy)), {"A": 1}).differences(Producer(first, {"A": 1})) == []
    other = Producer(weights(tmp_path, b"abcd"), {"A": 2, "B": [1, 2]}).differences(Producer(first, {"A": 1}))
    assert len(other) == 3 and other[0].startswith("the weights: ")
    assert other[1:] == ["A: 1 then, 2 now", "B: '(unset)' then, [1, 2] now"]


def test_a_store_of_other_weights_is_refused_and_kept_until_overwrite(tmp_path, caplog):
    out = str(tmp_path / "features")
    made = Producer(weights(tmp_path, b"abc"), {"DATA.MEAN": (0.5, 0.5, 0.5)})
    open_store(out, made).write("/v/a.mp4", np.ones(3))
    caplog.set_level(logging.WARNING, "slowmask.features")
    assert open_store(out, Producer(made.weights, {"DATA.MEAN": [0.5, 0.5, 0.5]})).is_done("/v/a.mp4")
    assert f"reusing the features of 1 input(s) in {out}" in caplog.text
    with pytest.raises(StoreOfOtherFeatures, match=r"DATA.MEAN: \[0.5, 0.5, 0.5\] then, \[0.4, 0.5, 0.5\] now"):
        open_store(out, Producer(made.weights, {"DATA.MEAN": [0.4, 0.5, 0.5]}))
    other = Producer(weights(tmp_path, b"abcd"), made.settings)
    with pytest.raises(StoreOfOtherFeatures, match="give another --out, or pass --overwrite"):
        open_store(out, other)
    assert os.path.exists(os.path.join(out, "pooled")) and recorded_sha256(out) == made.weights.sha256
    (tmp_path / "features" / "notes.txt").write_text("mine")
    assert not open_store(out, other, overwrite=True).is_done("/v/a.mp4")
    assert "deleted the features of 1 input(s)" in caplog.text
    assert sorted(os.listdir(out)) == ["notes.txt", "pooled", MANIFEST]
    assert recorded_sha256(out) == other.weights.sha256


def test_features_with_no_record_of_their_maker_are_refused(tmp_path):
    out = tmp_path / "features"
    (out / "pooled").mkdir(parents=True)
    np.save(out / "pooled" / "a-0123456789.npy", np.ones(3, dtype=np.float32))
    unrecorded = rf"holds the features of 1 input\(s\) with no record of what made them \({MANIFEST} is missing\)"
    with pytest.raises(StoreOfOtherFeatures, match=unrecorded):
        open_store(str(out), Producer(weights(tmp_path, b"abc"), {}))


def test_a_store_without_features_takes_the_new_maker_and_an_unreadable_record_is_refused(tmp_path):
    out = str(tmp_path / "features")
    open_store(out, Producer(weights(tmp_path, b"abc"), {}))  # a run that stopped before its first feature
    second = Producer(weights(tmp_path, b"abcd"), {})
    open_store(out, second).write("/v/a.mp4", np.ones(3))
    assert recorded_sha256(out) == second.weights.sha256
    (tmp_path / "features" / MANIFEST).write_text("{not json")
    with pytest.raises(StoreOfOtherFeatures, match=r"1 input\(s\) with an unreadable record of what made them"):
        open_store(out, second)


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    out = str(tmp_path / "features")
    with hold_store(out):
        with pytest.raises(OutputDirInUse, match=rf"is being written by another run \(pid {os.getpid()} on host"):
            with hold_store(out):
                pass
    lock = RunLock(out)  # released: free for the next run
    lock.acquire()
    lock.release()


def test_relative_list_paths_are_read_from_the_lists_folder(tmp_path, monkeypatch, caplog):
    lists = tmp_path / "lists"
    (lists / "clips").mkdir(parents=True)
    (lists / "clips" / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    (lists / "list.txt").write_text(f"clips/a.mp4 0\nb.mp4 1\nmissing.mp4 2\n{tmp_path}/b.mp4 3\n")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, "slowmask.features"):
        paths = media_inputs(str(lists / "list.txt"))
    assert paths == [str(lists / "clips" / "a.mp4"), "b.mp4", str(lists / "missing.mp4"), f"{tmp_path}/b.mp4"]
    assert f"1 of the 3 relative paths of {lists / 'list.txt'} are not under its folder" in caplog.text
    assert media_inputs(str(lists / "list.txt"), prefix="/data") == [
        "/data/clips/a.mp4", "/data/b.mp4", "/data/missing.mp4", f"{tmp_path}/b.mp4"]


def test_a_folder_gives_its_videos_and_images(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.MP4", "sub/a.webm", "c.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not media")
    assert media_inputs(str(tmp_path)) == [str(tmp_path / n) for n in ("b.MP4", "c.png", "sub/a.webm")]
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.new("RGB", (2, 2)).save(empty / "x.tiff")
    with pytest.raises(ValueError, match=f"no videos or images .* under the folder {empty}"):
        media_inputs(str(empty))
