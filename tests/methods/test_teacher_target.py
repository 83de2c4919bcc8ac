"""The teacher-feature target: grid resampling, normalization, a frozen teacher kept out
of the student's state dict, parameters and train mode; cosine loss; visible- and all-token loss."""

import pytest
import torch
from torch import nn

from slowmask.models.losses import build_loss
from slowmask.methods import MaskedPretrainer
from slowmask.methods.distillation import TeacherFeatureTarget, resample_tokens


class PatchTeacher(nn.Module):
    """Mean-pools (pt, ph, pw) patches and projects them: (B, 3, T, H, W) -> tokens, grid."""

    def __init__(self, patch=(2, 16, 16), dim=8):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(3, dim)
        self.drop = nn.Dropout(0.5)  # would change the features if train mode reached it

    def forward(self, x):
        pooled = nn.functional.avg_pool3d(x, self.patch)  # (B, 3, t, h, w)
        grid = tuple(pooled.shape[2:])
        return self.drop(self.proj(pooled.flatten(2).transpose(1, 2))), grid


class DenseStudent(nn.Module):
    """encoder(x, mask) -> ([tokens (B, t*h*w, D)], [grid]) on a fixed 2x2x2 grid."""

    def __init__(self, dim=8):
        super().__init__()
        self.proj = nn.Linear(3, dim)

    def forward(self, x, mask):
        pooled = nn.functional.adaptive_avg_pool3d(x, (2, 2, 2))
        return [self.proj(pooled.flatten(2).transpose(1, 2))], [(2, 2, 2)]


class Identity(nn.Module):
    def forward(self, features):
        return features


def _student(target, loss_tokens="masked"):
    return MaskedPretrainer(DenseStudent(), Identity(), target, build_loss("mse"), loss_tokens)


def test_target_on_the_prediction_grid_when_grids_match():
    target = TeacherFeatureTarget(PatchTeacher(), dim=8, normalize="layernorm")
    out = target(torch.randn(2, 3, 4, 32, 32), (2, 2, 2))
    assert out.shape == (2, 8, 8)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 8), atol=1e-3, rtol=0)


def test_resampling_upsamples_linearly_and_downsamples_by_averaging():
    # t: 2 -> 4 (linear, align_corners=False: 0, 0.25, 0.75, 1); h: 4 -> 2 (pairs averaged).
    values = torch.tensor([0.0, 1.0]).view(2, 1, 1) + torch.tensor([0.0, 10.0, 20.0, 30.0]).view(1, 4, 1)
    tokens = values.reshape(1, 8, 1)  # grid (2, 4, 1), D = 1
    out = resample_tokens(tokens, (2, 4, 1), (4, 2, 1)).reshape(4, 2)
    expected = torch.tensor([0.0, 0.25, 0.75, 1.0]).view(4, 1) + torch.tensor([5.0, 25.0]).view(1, 2)
    torch.testing.assert_close(out, expected)


def test_target_resamples_a_coarser_teacher_to_the_student_grid():
    teacher = PatchTeacher(patch=(4, 32, 32), dim=8)  # grid (1, 1, 1) on a 4x32x32 clip
    target = TeacherFeatureTarget(teacher, dim=8, normalize="none")
    clip = torch.randn(2, 3, 4, 32, 32)
    out = target(clip, (2, 2, 2))
    tokens, _ = teacher.eval()(clip)
    assert out.shape == (2, 8, 8)
    torch.testing.assert_close(out, tokens.expand(2, 8, 8))


def test_teacher_frozen_in_eval_mode_and_outside_the_state_dict():
    teacher = PatchTeacher()
    model = _student(TeacherFeatureTarget(teacher, dim=8)).train()
    assert not teacher.training and not teacher.drop.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not [k for k in model.state_dict() if "teacher" in k or "_held" in k]
    assert sorted(model.state_dict()) == ["proj.bias", "proj.weight"]
    assert {id(p) for p in model.parameters()}.isdisjoint(id(p) for p in teacher.parameters())
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[:, 0] = True
    model(torch.randn(2, 3, 4, 32, 32), mask)["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert model.encoder.proj.weight.grad is not None


def test_student_checkpoint_round_trips_without_the_teacher():
    model = _student(TeacherFeatureTarget(PatchTeacher(), dim=8))
    fresh = _student(TeacherFeatureTarget(PatchTeacher(), dim=8))
    fresh.load_state_dict(model.state_dict(), strict=True)
    torch.testing.assert_close(fresh.encoder.proj.weight, model.encoder.proj.weight)


def test_moving_the_student_moves_the_teacher():
    teacher = PatchTeacher()
    _student(TeacherFeatureTarget(teacher, dim=8)).to(torch.float64)
    assert teacher.proj.weight.dtype == torch.float64


def test_cosine_loss_on_a_hand_computed_case():
    pred = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 2.0], [3.0, 3.0]])
    # rows: cos 0 -> 1 - 0 = 1; cos 1 -> 0; mean 0.5.
    torch.testing.assert_close(build_loss("cosine")(pred, target), torch.tensor(0.5))


def test_visible_option_puts_the_loss_on_the_unmasked_tokens():
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[:, 0] = True  # first time step masked: 4 tokens of 8 per clip
    mask[0, 1, 0, 0] = True  # one more in clip 0
    clip = torch.randn(2, 3, 4, 32, 32)
    target = TeacherFeatureTarget(PatchTeacher(), dim=8)
    masked = _student(target)(clip, mask)
    visible = _student(target, loss_tokens="visible")(clip, mask)
    assert masked["target"].shape == (9, 8) and visible["target"].shape == (7, 8)
    full = target(clip, (2, 2, 2))
    torch.testing.assert_close(visible["target"], full[~mask.flatten(1)])


def test_all_option_puts_the_loss_on_every_token_and_an_unknown_name_is_refused():
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)
    mask[:, 0] = True
    clip = torch.randn(2, 3, 4, 32, 32)
    target = TeacherFeatureTarget(PatchTeacher(), dim=8)
    every = _student(target, loss_tokens="all")(clip, mask)
    full = target(clip, (2, 2, 2))
    assert every["target"].shape == (16, 8)
    torch.testing.assert_close(every["target"], full.flatten(0, 1))
    torch.testing.assert_close(every["loss"], ((every["pred"] - full.flatten(0, 1)) ** 2).mean())
    with pytest.raises(ValueError, match="'every' are unknown; use one of \\['all', 'masked', 'visible'\\]"):
        _student(target, loss_tokens="every")
