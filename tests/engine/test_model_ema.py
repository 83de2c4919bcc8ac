"""MODEL.EMA: the moving average of a fine-tuned classifier's weights follows the decay
rule once per applied update, is validated beside the raw weights, and resumes bit for bit."""

import pytest
import torch
from torch import nn

from slowmask.config import load_config
from slowmask.checkpoint import ema_checkpoint_path
from slowmask.engine.hooks.model_ema import ModelEma
from slowmask.engine.step import TrainStep
from slowmask.utils.errors import ConfigError
from slowmask.utils.logging import read_json_stats
from tool_scripts import FT_CFG, QUICK_FINETUNE, load_tool

run_net = load_tool("run_net")
# The short fine-tune (QUICK_FINETUNE), no test, an EMA of the weights.
QUICK = [*QUICK_FINETUNE, "TEST.ENABLE", "False", "MODEL.EMA.ENABLE", "True", "MODEL.EMA.DECAY", "0.9",
         "MODEL.EMA.WARMUP_EPOCHS", "1.0"]


def test_the_average_follows_the_linear_warm_up_then_the_decay():
    model = nn.Linear(3, 2)
    ema = ModelEma(model, decay=0.9, warmup_steps=4, warmup_start=0.5)
    expected = {name: value.clone() for name, value in model.state_dict().items()}
    for index in range(6):
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.25 * (index + 1))
        decay = 0.5 + (0.9 - 0.5) * min(index / 4, 1.0)  # 0.5, 0.6, 0.7, 0.8, 0.9, 0.9
        for name, value in model.state_dict().items():
            expected[name] = decay * expected[name] + (1 - decay) * value
        ema(index)
    for name, value in ema.module.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-6)
    assert ema.updates == 6 and not any(p.requires_grad for p in ema.module.parameters())


def test_the_step_updates_the_average_once_per_optimizer_update_and_never_on_a_skipped_one():
    model = nn.Linear(2, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    ema = ModelEma(model, decay=0.5, device=torch.device("cpu"))
    start = model.weight.detach().clone()

    def objective(module, batch):
        return (module(batch["x"]).sum() * batch["scale"]), {}

    step = TrainStep(model, optimizer, objective, torch.device("cpu"), accum_steps=2, skip_nonfinite=True,
                     after_update=[ema])
    ones = torch.ones(1, 2)
    step({"x": ones, "scale": torch.tensor(1.0)})  # a micro-batch: no update yet
    assert ema.updates == 0
    step({"x": ones, "scale": torch.tensor(1.0)})  # the update: the mean gradient 1 per entry, times lr 0.5
    assert ema.updates == 1
    torch.testing.assert_close(model.weight.detach(), start - 0.5)
    torch.testing.assert_close(ema.module.weight, 0.5 * start + 0.5 * (start - 0.5))
    step({"x": ones, "scale": torch.tensor(float("nan"))})
    step({"x": ones, "scale": torch.tensor(float("nan"))})  # skipped: no update, the average stays
    assert ema.updates == 1


@pytest.mark.parametrize("override, named", [
    (["MODEL.EMA.DECAY", "1.0"], "MODEL.EMA.DECAY must be in [0, 1)"),
    (["MODEL.EMA.DEVICE", "cuda:1"], "MODEL.EMA.DEVICE is 'cuda:1'; supported: '', 'cpu'"),
    (["TEST.CHECKPOINT", "ema"], "TEST.CHECKPOINT 'ema' tests the weights' moving average, which this run does not"),
    (["TEST.CHECKPOINT", "newest"], "TEST.CHECKPOINT is 'newest'; supported: 'last', 'best', 'ema'"),
])
def test_bad_ema_and_test_checkpoint_choices_are_refused_naming_the_key(override, named):
    with pytest.raises(ConfigError, match="^" + named.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(FT_CFG, override)


def test_the_average_is_validated_beside_the_weights_resumes_bit_for_bit_and_leaves_the_run_as_it_was(demo_data_dir, tmp_path):
    def fine_tune(output_dir, epochs, *more):
        assert run_net.main(["--cfg", FT_CFG, "DATA.PATH_TO_DATA_DIR", demo_data_dir, "OUTPUT_DIR", str(output_dir),
                             *QUICK, "SOLVER.MAX_EPOCH", str(epochs), *more]) == 0

    whole, resumed, without = tmp_path / "whole", tmp_path / "resumed", tmp_path / "without"
    fine_tune(whole, 2)
    fine_tune(resumed, 1)
    fine_tune(resumed, 2)  # AUTO_RESUME: the second epoch from the first one's checkpoint
    fine_tune(without, 2, "MODEL.EMA.ENABLE", "False")
    validations = [s for s in read_json_stats(str(whole)) if s["_type"] == "val_epoch"]
    assert [s["epoch"] for s in validations] == ["1/2", "2/2"]
    assert all(0.0 <= s["ema_top1_acc"] <= 100.0 for s in validations)
    assert validations[1]["best_ema_top1_acc"] == max(s["ema_top1_acc"] for s in validations)
    log = (whole / "stdout.log").read_text()
    assert "model EMA: decay 0.9 after a linear warm-up from 0 over 2 updates, kept on cpu" in log
    assert "validation of the weights' moving average after epoch 2: top-1" in log
    averages = [torch.load(ema_checkpoint_path(str(run)), weights_only=True) for run in (whole, resumed)]
    assert averages[0]["epoch"] == averages[1]["epoch"] == 1
    for name, value in averages[0]["model_state"].items():
        assert torch.equal(value, averages[1]["model_state"][name]), name
    raw = torch.load(whole / "checkpoints" / "checkpoint_epoch_00002.pyth", weights_only=True)
    alone = torch.load(without / "checkpoints" / "checkpoint_epoch_00002.pyth", weights_only=True)
    for name, value in alone["model_state"].items():  # keeping and validating the average changes nothing else
        assert torch.equal(value, raw["model_state"][name]), name
    assert raw["hooks_state"]["ModelEma"]["updates"] == 4
    differs = [name for name, value in raw["model_state"].items()
               if value.is_floating_point() and not torch.equal(value, averages[0]["model_state"][name])]
    assert "head.projection.weight" in differs  # the average is not the raw weights
