"""A key mismatch between a checkpoint and a model reads as a short diff grouped by module."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask import checkpoint
from slowmask.engine import resume
from slowmask.checkpoint import state_diff
from slowmask.methods import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S_PT = os.path.join(REPO, "configs", "k400_MViT_S_MaskFeat_PT.yaml")
S_FT = os.path.join(REPO, "tests", "models", "configs", "mvitv2_s_16x4_ft.yaml")
L_FT = os.path.join(REPO, "tests", "models", "configs", "mvitv2_l_16x4_ft.yaml")


def meta_state(path):
    with torch.device("meta"):
        return build_model(load_config(path)).state_dict()


def test_equal_states_have_no_diff():
    state = {"a.weight": torch.zeros(2, 3)}
    assert not state_diff(state, state) and state_diff(state, state).summary() == "no difference"


def test_pretraining_checkpoint_against_a_classifier():
    diff = state_diff(meta_state(S_PT), meta_state(S_FT))
    assert diff.missing == ["head.projection.bias", "head.projection.weight", "norm.bias", "norm.weight"]
    assert "mask_token" in diff.unexpected and "pred_head.projections.0.weight" in diff.unexpected
    text = diff.summary()
    assert "missing in the checkpoint (4):\n  head.projection.{bias,weight} (2)\n  norm.{bias,weight} (2)" in text
    assert "blocks.15.attn.rel_pos_h: checkpoint [27, 96] vs model [13, 96]" in text


def test_another_architecture_gives_a_short_grouped_diff():
    diff = state_diff(meta_state(L_FT), meta_state(S_FT))
    text = diff.summary()
    assert len(diff.unexpected) + len(diff.shape) > 1000  # the raw error would have a line each
    assert len(text.splitlines()) < 40
    assert "blocks.{16-47}.attn.qkv.{bias,weight} (64)" in text
    assert "shape mismatch (390):" in text and "e.g." in text


def test_resume_shows_the_diff_instead_of_the_raw_error(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    other = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 1))
    path = str(tmp_path / "other.pyth")
    checkpoint.save_checkpoint(path, other, None, 0, "")
    with pytest.raises(checkpoint.CheckpointError) as error:
        resume.resume(path, model)
    message = str(error.value)
    assert "unexpected in the checkpoint (2):\n  2.{bias,weight} (2)" in message
    assert "0.weight: checkpoint [5, 3] vs model [4, 3]" in message
    assert "size mismatch" not in message and error.value.__cause__ is None


def test_a_caffe2_pickle_is_called_out_of_scope(tmp_path):
    import pickle

    path = tmp_path / "SLOWFAST_8x8_R50.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": [1.0]}}))
    with pytest.raises(checkpoint.CheckpointError, match="Caffe2 checkpoints are out of scope"):
        checkpoint.read_checkpoint(str(path))
