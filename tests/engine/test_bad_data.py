"""Bad data never kills a run: skips counted per epoch with their names; too many stop it."""

import os

import pytest

from slowmask.config import ConfigError, load_config
from slowmask.data import NoReadableVideoError, read_video_list
from slowmask.data.synthetic import write_unreadable_files
from slowmask.engine.hooks import BadDataError, BadDataGuard, batch_items
from slowmask.engine.loop import TrainLoop
from slowmask.engine.train import train
from slowmask.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


@pytest.fixture(scope="module")
def data_with_bad_files(demo_data_dir, tmp_path_factory):
    """A train.csv of the 16 demo videos and a zero-byte, a truncated, a text and a
    missing .mp4 among them; returns (folder, bad paths)."""
    folder = tmp_path_factory.mktemp("bad_data")
    good = read_video_list(os.path.join(demo_data_dir, "train.csv"))
    bad = sorted(write_unreadable_files(str(folder / "videos"), good[0][0]).values())
    rows = [path for path, _ in good[:5]] + bad[:2] + [path for path, _ in good[5:]] + bad[2:]
    (folder / "train.csv").write_text("".join(f"{path} 0\n" for path in rows))
    return str(folder), bad


def cfg_for(data_dir, out_dir, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", *opts,
    ])


def test_four_bad_files_among_good_ones_train_through_an_epoch_and_are_reported(data_with_bad_files, tmp_path):
    data_dir, bad = data_with_bad_files
    train(cfg_for(data_dir, tmp_path, "DATA_LOADER.NUM_WORKERS", "1", "DATA_LOADER.MAX_BAD_FRACTION", "0.5"))
    epoch = [s for s in read_json_stats(str(tmp_path)) if s["_type"] == "train_epoch"]
    assert len(epoch) == 1
    assert epoch[0]["skipped"] == 4 and sorted(epoch[0]["skipped_files"]) == bad
    assert epoch[0]["replaced_items"] >= 4
    assert epoch[0]["data_time_total"] > 0 and epoch[0]["step_time_total"] > 0
    log = (tmp_path / "stdout.log").read_text()
    line = next(line for line in log.splitlines() if "epoch: 1/1 loss:" in line)
    assert "skipped: 4" in line and all(path in line for path in bad)
    assert "skipped 4 unreadable video(s)" in log and "of the iteration time" in log


def test_a_dataset_where_every_file_is_bad_stops_with_a_clear_error(data_with_bad_files, tmp_path):
    data_dir, bad = data_with_bad_files
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "train.csv").write_text("".join(f"{path} 0\n" for path in bad))
    with pytest.raises(NoReadableVideoError, match=r"none of the 11 videos tried could be read \(DATA_LOADER.NUM_RETRIES = 10\)") as error:
        train(cfg_for(str(only_bad), tmp_path / "out"))
    assert "text.mp4 (DecodeError)" in str(error.value) and "missing.mp4 (FileNotFoundError)" in str(error.value)


def test_more_bad_items_than_the_limit_stop_the_run_naming_count_fraction_key_and_files(data_with_bad_files, tmp_path):
    data_dir, bad = data_with_bad_files
    with pytest.raises(BadDataError) as error:
        train(cfg_for(data_dir, tmp_path, "DATA_LOADER.MAX_BAD_FRACTION", "0.1"))
    message = str(error.value)
    assert "needed a replacement for an unreadable video, more than DATA_LOADER.MAX_BAD_FRACTION = 0.1" in message
    assert "of the 20 items" in message or "(20 in the epoch)" in message or "20 in the epoch" in message
    assert "%" in message and any(path in message for path in bad)


def batch(*skipped_per_item, repeats=1):
    """A batch of items whose meta["skipped"] are the given lists, each item repeated
    `repeats` times (as collate_clips does with NUM_SAMPLE clips)."""
    metas = []
    for number, skipped in enumerate(skipped_per_item):
        meta = {"path": f"good{number}.mp4", "skipped": list(skipped)}
        metas += [meta] * repeats
    return {"meta": metas}


def test_repeated_samples_of_an_item_count_once():
    assert len(batch_items(batch([], ["bad.mp4"], [], repeats=3))) == 3


def run_guard(batches, max_fraction):
    guard = BadDataGuard(max_fraction)
    TrainLoop(lambda b: {"loss": 0.0}, batches, [guard], max_epoch=1).run()
    return guard


def test_an_epoch_at_the_limit_runs_and_one_above_it_stops_early():
    clean, one_bad = batch([], [], [], []), batch(["a.mp4"], [], [], [])
    run_guard([one_bad, clean, clean, clean], max_fraction=0.25 / 4)  # 1 of 16 items: at the limit
    with pytest.raises(BadDataError, match=r"epoch 1, iteration 2: 2 of the 8 items loaded so far \(25%; 16 in the epoch\)"):
        run_guard([one_bad, one_bad, clean, clean], max_fraction=0.1)  # 2 of 16 > 1.6: sure after iteration 2


def test_the_guard_resets_every_epoch():
    batches = [batch(["a.mp4"], []), batch([], [])]
    guard = BadDataGuard(0.25)
    TrainLoop(lambda b: {"loss": 0.0}, batches, [guard], max_epoch=3).run()
    assert (guard.items, guard.replaced, list(guard.paths)) == (4, 1, ["a.mp4"])


def test_limits_outside_zero_one_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"DATA_LOADER.MAX_BAD_FRACTION must be in \[0, 1\], got 1.5"):
        BadDataGuard(1.5)
    with pytest.raises(ConfigError, match=r"DATA_LOADER.MAX_BAD_FRACTION must be in \[0, 1\]"):
        cfg_for(str(tmp_path), tmp_path, "DATA_LOADER.MAX_BAD_FRACTION", "-0.1")
    with pytest.raises(ConfigError, match="DATA_LOADER.DECODE_TIMEOUT must be >= 0"):
        cfg_for(str(tmp_path), tmp_path, "DATA_LOADER.DECODE_TIMEOUT", "-1.0")
