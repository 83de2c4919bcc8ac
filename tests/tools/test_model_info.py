"""tools/model_info.py: parameters, fvcore GFLOPs and per-stage token grids."""

import os

import torch

from slowmask.utils.model_info import Stage, count_flops, mvit_stages
from tool_scripts import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
model_info = load_tool("model_info")

S_FT = os.path.join(REPO, "tests", "pyslowfast", "configs", "k400_MVITv2_S_16x4_FT.yaml")
DEMO = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")


def test_mvitv2_s_fine_tuning_at_16x224x224_is_36_5_m_parameters_and_71_4_gflops(capsys):
    assert model_info.main(["--cfg", S_FT]) == 0
    out = capsys.readouterr().out
    assert "input: 1 x 3 x 16 x 224 x 224" in out
    assert "parameters: 36,475,120 (36.5 M)" in out
    assert "GFLOPs: 71.4 " in out
    assert "2       1-2          192      2  8 x 28 x 28 = 6272" in out
    assert "4       14-15        768      8  8 x 7 x 7 = 392" in out


def test_a_pretraining_model_is_counted_with_a_mask(capsys):
    assert model_info.main(["--cfg", DEMO]) == 0
    out = capsys.readouterr().out
    assert "model: MaskMViT" in out and "GFLOPs:" in out
    assert "patch                 32         4 x 16 x 16 = 1024" in out


class Attending(torch.nn.Module):
    """Counts nothing on its fused path and one (3 x 8) @ (8 x 4) matmul on the explicit one."""

    def __init__(self):
        super().__init__()
        self.use_sdpa = True
        self.weight = torch.nn.Parameter(torch.ones(8, 4))

    def forward(self, x):
        return x[..., :4] if self.use_sdpa else x @ self.weight


def test_flops_are_counted_on_the_explicit_attention_path_and_the_switch_is_restored():
    module = Attending()
    assert count_flops(module, (torch.zeros(1, 3, 8),)) == 3 * 8 * 4
    assert module.use_sdpa is True


def test_stages_are_runs_of_one_token_grid():
    stages = mvit_stages([8, 8, 16, 16], [1, 1, 2, 2], [(2, 4, 4), (2, 2, 2), (2, 2, 2), (2, 1, 1)])
    assert stages == [Stage(0, 0, 8, 1, (2, 4, 4)), Stage(1, 2, 16, 2, (2, 2, 2)), Stage(3, 3, 16, 2, (2, 1, 1))]


def test_a_bad_config_exits_2(capsys):
    assert model_info.main(["--cfg", DEMO, "DATA.NUM_FRAME", "8"]) == 2
    assert "unknown config key DATA.NUM_FRAME" in capsys.readouterr().err
