"""TEST.CHECKPOINT: the test after training reads the newest checkpoint ("last"), the best
validated one ("best") or the weights' moving average ("ema"), through the same multi-view
path; checked by the weights the test's evaluation got."""

import json
import os
import shutil

import pytest
import torch

from slowmask import checkpoint
from slowmask.config import get_cfg
from slowmask.engine import evaluate as evaluation
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
run_net = load_tool("run_net")
FT_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_FT.yaml")
COMMON = ["DATA_LOADER.NUM_WORKERS", "0", "MVIT.DEPTH", "2", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
          "DATA.DECODING_SHORT_SIZE", "40", "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "2"]


@pytest.fixture(scope="module")
def fine_tuned(demo_data_dir, tmp_path_factory):
    """A 2-epoch fine-tune with model EMA, validated and checkpointed each epoch, not tested;
    checkpoint_best.pyth replaced by epoch 1's, so that last, best and ema differ."""
    output_dir = tmp_path_factory.mktemp("fine_tuned")
    assert run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(output_dir), *COMMON,
                         "SOLVER.MAX_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.EVAL_PERIOD", "1",
                         "TRAIN.CHECKPOINT_PERIOD", "1", "TRAIN.CHECKPOINT_FILE_PATH", "", "TEST.ENABLE", "False",
                         "MODEL.EMA.ENABLE", "True", "MODEL.EMA.DECAY", "0.5"]) == 0
    folder = output_dir / "checkpoints"
    shutil.copy(folder / "checkpoint_epoch_00001.pyth", folder / "checkpoint_best.pyth")
    return output_dir


@pytest.mark.parametrize("choice, file", [
    ("last", "checkpoint_epoch_00002.pyth"), ("best", "checkpoint_best.pyth"), ("ema", "checkpoint_ema.pyth"),
])
def test_the_chosen_weights_are_tested_with_every_view(fine_tuned, demo_data_dir, choice, file, monkeypatch):
    tested = []

    def recording(model, loader, *args, **kwargs):
        tested.append({name: value.clone() for name, value in model.state_dict().items()})
        return evaluate(model, loader, *args, **kwargs)

    evaluate = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", recording)
    assert run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(fine_tuned),
                         *COMMON, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT", choice]) == 0
    folder = fine_tuned / "checkpoints"
    files = {name: torch.load(folder / name, weights_only=True)["model_state"]
             for name in ("checkpoint_epoch_00002.pyth", "checkpoint_best.pyth", "checkpoint_ema.pyth")}
    [weights] = tested
    for name, state in files.items():
        same = all(torch.equal(weights[key], value) for key, value in state.items())
        assert same == (name == file), name
    results = json.loads((fine_tuned / "test_results.json").read_text())
    assert results["views_per_video"] == 2 and results["num_videos"] == 4
    assert f"TEST.CHECKPOINT '{choice}': {folder / file}" in (fine_tuned / "stdout.log").read_text()


def test_a_choice_whose_file_the_run_did_not_write_is_named(demo_data_dir, tmp_path, capsys):
    status = run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(tmp_path),
                           *COMMON, "TRAIN.ENABLE", "False", "TEST.CHECKPOINT", "ema"])
    assert status == 4
    assert capsys.readouterr().err.splitlines()[0] == (
        f"CheckpointError: nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {checkpoint.checkpoint_dir(str(tmp_path))} "
        "holds no file for TEST.CHECKPOINT 'ema' (checkpoint_ema.pyth, written at the end of a fine-tuning run with "
        "MODEL.EMA.ENABLE True); give TEST.CHECKPOINT_FILE_PATH a fine-tuned classifier, or choose another "
        f"TEST.CHECKPOINT (traceback in {tmp_path / 'stdout.log'})")


def test_a_given_file_is_tested_as_it_is_and_an_unused_choice_is_warned_about(tmp_path, caplog):
    cfg = get_cfg()
    cfg.OUTPUT_DIR, cfg.TEST.CHECKPOINT_FILE_PATH, cfg.TEST.CHECKPOINT = str(tmp_path), "given.pyth", "best"
    assert evaluation.checkpoint_to_test(cfg) == "given.pyth"
    assert (f"testing TEST.CHECKPOINT_FILE_PATH given.pyth as given: TEST.CHECKPOINT 'best' chooses among this run's "
            "own files, and is not used") in caplog.text
