"""A mid-epoch position kept in items: resuming with another TRAIN.BATCH_SIZE
(TRAIN.AUTO_RESUME_ALLOW_CHANGES True) neither repeats nor skips an item."""

import os
import shutil

import pytest
import torch

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine.resume import ResumePoint
from slowmask.engine.step import TrainStep
from slowmask.engine.train import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def demo_cfg(data_dir, out_dir, batch_size, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "OUTPUT_DIR", str(out_dir), "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.BATCH_SIZE", str(batch_size), "SOLVER.MAX_EPOCH", "1", "SOLVER.WARMUP_EPOCHS", "0.5", *opts,
    ])


def recording_batches(monkeypatch, seen):
    """Make the training step append the item indices of every batch it is given to `seen`."""
    step = TrainStep.__call__

    def recording(self, batch):
        seen.append(batch["index"].tolist())
        return step(self, batch)

    monkeypatch.setattr(TrainStep, "__call__", recording)


@pytest.fixture(scope="module")
def whole_epoch(demo_data_dir, tmp_path_factory):
    """(OUTPUT_DIR, items in the order trained) of an epoch of 16 items in batches of 2,
    with a checkpoint after every batch."""
    out, seen = tmp_path_factory.mktemp("whole"), []
    with pytest.MonkeyPatch.context() as patch:
        recording_batches(patch, seen)
        train(demo_cfg(demo_data_dir, out, 2, "TRAIN.CHECKPOINT_PERIOD_ITERS", "1"))
    return str(out), [index for batch in seen for index in batch]


@pytest.fixture
def batches_seen(monkeypatch):
    """The item indices of every batch the training step is given, in order."""
    seen = []
    recording_batches(monkeypatch, seen)
    return seen


@pytest.mark.parametrize("done, legacy", [(4, False), (3, False), (4, True)])
def test_resuming_with_a_larger_batch_continues_at_the_next_item(
    demo_data_dir, tmp_path, whole_epoch, batches_seen, done, legacy
):
    """An epoch of 16 items in batches of 2, checkpointed after `done` batches (2 * done
    items), resumed in batches of 4: the resumed run trains the items after those, in the
    same order, each once, and numbers its batches to end the epoch at batch 4. With 3
    batches done (6 items) the 10 left make 2 whole batches: the last 2 items are dropped
    as an epoch's partial last batch always is. `legacy`: a checkpoint written before
    `items` was stored (its position comes from `iteration` and its config's batch size)."""
    whole_dir, whole = whole_epoch
    assert sorted(whole) == list(range(16))
    mid_epoch = checkpoint.checkpoint_path(whole_dir, 1, done)
    state = checkpoint.read_checkpoint(mid_epoch)
    assert (state["iteration"], state["items"]) == (done, 2 * done)
    os.makedirs(tmp_path / "resumed" / "checkpoints")
    copied = str(tmp_path / "resumed" / "checkpoints" / os.path.basename(mid_epoch))
    if legacy:
        del state["items"]
        torch.save(state, copied)
    else:
        shutil.copy(mid_epoch, copied)
    train(demo_cfg(demo_data_dir, tmp_path / "resumed", 4, "TRAIN.AUTO_RESUME_ALLOW_CHANGES", "True"))
    resumed = [index for batch in batches_seen for index in batch]
    left = 16 - 2 * done
    assert [len(batch) for batch in batches_seen] == [4] * (left // 4)
    assert resumed == whole[2 * done: 2 * done + 4 * (left // 4)]
    log = (tmp_path / "resumed" / "stdout.log").read_text()
    assert "iter: 4/4" in log  # the resumed epoch ends at its last batch number, so its checkpoint is written
    assert os.path.exists(checkpoint.checkpoint_path(str(tmp_path / "resumed"), 1))


def test_a_checkpoint_written_after_a_resume_with_another_batch_size_stores_the_items_consumed():
    """6 items done when the run resumes in batches of 4 out of 16: it starts at batch
    number 2 (2 whole batches of the 10 items left end the epoch at batch 4); after batch
    number 3 the items consumed are 6 + 4 = 10, not 3 * 4 = 12."""
    point = ResumePoint.after({"epoch": 0, "iteration": 3, "cfg": "TRAIN:\n  BATCH_SIZE: 2\n"})
    assert point.items == 6
    point = point.in_batches_of(4, 16)
    assert point.iteration == 2
    assert point.items_done(0, 4) == 6 and point.items_done(1, 4) == 0
    assert point.items_after(0, 3, 4) == 10 and point.items_after(1, 3, 4) == 12
    unknown = ResumePoint.after({"epoch": 0, "iteration": 5, "cfg": ""})
    assert unknown.items is None and unknown.in_batches_of(4, 16) == unknown and unknown.items_done(0, 4) == 20
