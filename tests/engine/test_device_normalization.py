"""DATA.NORMALIZE_ON_DEVICE: the loader's training clips stay uint8 and the step normalizes
them on its device; the clip, the loss and the gradients are those of the loader's own
normalization."""

import os

import pytest
import torch

from slowmask.config import load_config
from slowmask.config import ConfigError
from slowmask.data import build_dataset, collate_clips
from slowmask.data.build import build_batch_transfer
from slowmask.data.collate import to_device
from slowmask.engine.optim import build_optimizer
from slowmask.engine.step import TrainStep, masked_prediction_objective
from slowmask.engine.train import train
from slowmask.methods import build_model
from slowmask.utils.logging import read_json_stats
from numerics import assert_same_gradients

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CFG = os.path.join(REPO, "configs", "demo", "MViT_tiny_MaskFeat_PT.yaml")
CPU = torch.device("cpu")


def _cfg(data_dir, on_device, *opts):
    return load_config(DEMO_CFG, [
        "DATA.PATH_TO_DATA_DIR", data_dir, "DATA_LOADER.NUM_WORKERS", "0", "TRAIN.BATCH_SIZE", "2",
        "DATA.NORMALIZE_ON_DEVICE", str(on_device), *opts,
    ])


def _batch(cfg):
    dataset = build_dataset(cfg, "train")
    return collate_clips([dataset[0], dataset[5]])


def _one_step(cfg, batch):
    torch.manual_seed(0)
    model = build_model(cfg)
    step = TrainStep(model, build_optimizer(cfg, model), masked_prediction_objective, CPU,
                     transfer=build_batch_transfer(cfg))
    metrics = step(batch)
    return metrics["loss"], model


# (RandAugment on the uint8 frames, channels reversed after the normalization) and the plain case.
CASES = {
    "plain": [],
    "randaugment_and_reversed_channels": ["AUG.AA_TYPE", "rand-m7-n2-mstd0.5-inc1", "DATA.REVERSE_INPUT_CHANNEL",
                                          "True"],
}


@pytest.mark.parametrize("opts", CASES.values(), ids=CASES.keys())
def test_a_step_on_uint8_clips_equals_the_step_on_the_loaders_float_clips(demo_data_dir, opts):
    cfg_off, cfg_on = _cfg(demo_data_dir, False, *opts), _cfg(demo_data_dir, True, *opts)
    batch_off, batch_on = _batch(cfg_off), _batch(cfg_on)
    assert batch_on["clip"].dtype == torch.uint8 and batch_off["clip"].dtype == torch.float32
    assert batch_on["clip"].shape == batch_off["clip"].shape == (2, 3, 8, 64, 64)
    assert torch.equal(batch_on["mask"], batch_off["mask"])
    # The same normalized clip to the bit: the mask and the HOG targets see what they saw before.
    assert torch.equal(build_batch_transfer(cfg_on)(batch_on, CPU)["clip"], batch_off["clip"])
    loss_off, model_off = _one_step(cfg_off, batch_off)
    loss_on, model_on = _one_step(cfg_on, batch_on)
    assert loss_on.item() == pytest.approx(loss_off.item(), rel=1e-6)
    assert_same_gradients(model_on.named_parameters(), model_off.named_parameters())


def test_a_step_without_the_normalizing_transfer_refuses_uint8_clips():
    batch = {"clip": torch.zeros(1, 3, 2, 4, 4, dtype=torch.uint8)}
    with pytest.raises(TypeError, match=r"clip is uint8, not normalized \(DATA.NORMALIZE_ON_DEVICE\).*"
                                        r"build_batch_transfer\(cfg\)"):
        to_device(batch, CPU)


def test_the_device_normalizer_refuses_clips_the_dataset_normalized(demo_data_dir):
    transfer = build_batch_transfer(_cfg(demo_data_dir, True))
    with pytest.raises(TypeError, match="needs the loader's uint8 clips, got torch.float32.*NORMALIZE_ON_DEVICE False"):
        transfer({"clip": torch.zeros(1, 3, 2, 4, 4)}, CPU)


def test_random_erasing_with_uint8_clips_is_refused_by_the_config_checks(demo_data_dir):
    with pytest.raises(ConfigError, match=r"NORMALIZE_ON_DEVICE keeps the loader's clips uint8, but random "
                                          r"erasing \(AUG.RE_PROB 0.25\).*set AUG.RE_PROB 0"):
        _cfg(demo_data_dir, True, "AUG.RE_PROB", "0.25")


@pytest.mark.gpu
def test_a_pinned_uint8_batch_is_normalized_on_the_gpu_as_on_the_cpu():
    generator = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (2, 3, 4, 16, 16), dtype=torch.uint8, generator=generator)
    from slowmask.data.collate import ClipsToDevice
    from slowmask.data.transforms import ClipNormalizer

    transfer = ClipsToDevice(ClipNormalizer([0.45, 0.4, 0.35], [0.225, 0.2, 0.25], reverse_channels=True))
    on_gpu = transfer({"clip": clip.pin_memory()}, torch.device("cuda"))["clip"]
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert torch.equal(on_gpu.cpu(), transfer({"clip": clip}, CPU)["clip"])


def test_a_training_run_with_the_key_logs_the_losses_of_one_without(demo_data_dir, tmp_path):
    losses = {}
    for on_device in (False, True):
        out = tmp_path / str(on_device)
        train(_cfg(demo_data_dir, on_device, "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCH", "1",
                   "SOLVER.WARMUP_EPOCHS", "0.0", "LOG_PERIOD", "1", "TRAIN.BATCH_SIZE", "8"))
        losses[on_device] = [s["loss"] for s in read_json_stats(str(out)) if s["_type"] == "train_iter"]
    assert len(losses[True]) == 2 and losses[True] == losses[False]
