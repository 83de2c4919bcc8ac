"""TEST.SAVE_RESULTS_PATH follows its extension: `.pkl` is a plain pickle that
`pickle.load` reads (numpy arrays, a list of paths), `.pt` / `.pyth` a torch file."""

import pickle

import numpy as np
import pytest
import torch

from slowmask.config import get_cfg
from slowmask.engine.evaluate import VideoScores, save_results

SCORES = torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
LABELS = torch.tensor([1, 0, 0])
PATHS = {0: "a.mp4", 1: "b c.mp4", 2: "d.mp4"}


def saved(tmp_path, name: str):
    cfg = get_cfg()
    cfg.OUTPUT_DIR, cfg.TEST.SAVE_RESULTS_PATH = str(tmp_path), name
    videos = VideoScores(SCORES, LABELS, torch.tensor([0, 1, 2]), torch.tensor([2, 2, 2]), PATHS)
    save_results(cfg, {"top1": 66.7, "videos": videos})
    return tmp_path / name


def test_a_pkl_name_is_a_plain_pickle(tmp_path):
    with open(saved(tmp_path, "preds.pkl"), "rb") as f:
        results = pickle.load(f)
    assert isinstance(results["scores"], np.ndarray) and isinstance(results["labels"], np.ndarray)
    np.testing.assert_array_equal(results["scores"], SCORES.numpy())
    np.testing.assert_array_equal(results["labels"], [1, 0, 0])
    assert results["paths"] == ["a.mp4", "b c.mp4", "d.mp4"]


@pytest.mark.parametrize("name", ["preds.pt", "preds.pyth"])
def test_a_torch_name_is_a_torch_file_of_tensors(tmp_path, name):
    results = torch.load(saved(tmp_path, name), weights_only=True)
    assert torch.equal(results["scores"], SCORES) and torch.equal(results["labels"], LABELS)
    assert results["paths"] == ["a.mp4", "b c.mp4", "d.mp4"]
    with open(tmp_path / name, "rb") as f, pytest.raises(pickle.UnpicklingError):
        pickle.load(f)
