"""Official VideoMAE / VideoMAE V2 .pth files, written here from the published key names
and shapes with every parameter non-zero, convert into slowmask models that give
VideoMAE's own outputs; the report names every tensor left over."""

import logging

import pytest
import torch
from safetensors.torch import save_file

from foreign_checkpoints import (
    CLASSES, DEPTH, DIM, HINTS, TOKENS, assert_close, encoder_tokens, slowmask_model, videomae_forward, videomae_state,
)
from slowmask.checkpoint import CheckpointError
from slowmask.checkpoint.convert import ConversionError, convert_checkpoint, read_source, videomae_sine_table


@pytest.mark.parametrize("wrapper, layer_scale", [("model", False), ("module", True)])
def test_a_fine_tuned_videomae_file_gives_videomae_logits(tmp_path, wrapper, layer_scale, caplog):
    state = videomae_state(layer_scale=layer_scale)
    path = tmp_path / "videomae_ft.pth"
    torch.save({wrapper: state, "epoch": 3}, path)
    converted = convert_checkpoint(str(path), HINTS)
    assert converted.report.format == "videomae"
    assert converted.report.unused == []
    assert converted.config["MODEL.NUM_CLASSES"] == CLASSES and converted.config["MVIT.USE_MEAN_POOLING"] is True
    assert converted.config["MVIT.LAYER_SCALE_INIT_VALUE"] == (0.1 if layer_scale else 0.0)
    model = slowmask_model(converted.config, converted.state)
    assert converted.report.compare(list(model.state_dict())).initialized == []
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert_close(model(clip), videomae_forward(state, clip))
    with caplog.at_level(logging.INFO):
        converted.report.log()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source tensors used" in caplog.text and "the zero key bias is exact" in caplog.text


def test_a_pretraining_videomae_file_gives_the_encoders_tokens_and_reports_the_decoder_unused(tmp_path, caplog):
    state = videomae_state(pretraining=True)
    path = tmp_path / "videomae_pt.pth"
    torch.save({"model": state}, path)
    converted = convert_checkpoint(str(path), HINTS)
    assert converted.report.unused == sorted([
        "decoder.blocks.0.attn.qkv.weight", "decoder.head.weight", "decoder.norm.weight", "encoder_to_decoder.weight",
        "mask_token",
    ])
    assert "MODEL.NUM_CLASSES" not in converted.config
    assert torch.equal(converted.state["pos_embed"], videomae_sine_table(TOKENS, DIM))
    model = slowmask_model(converted.config)
    report = converted.report.compare(list(model.state_dict()))
    assert report.initialized == ["head.projection.weight", "head.projection.bias"]
    model.load_state_dict(converted.state, strict=False)
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert_close(encoder_tokens(model, clip), videomae_forward(state, clip, pretraining=True))
    with caplog.at_level(logging.INFO):
        report.log()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].endswith(
        "5 source tensors left unused:\n  mask_token (1)\n  decoder.blocks.0.attn.qkv.weight (1)\n"
        "  decoder.head.weight (1)\n  decoder.norm.weight (1)\n  encoder_to_decoder.weight (1)"
    )
    assert "2 model tensors not in the source, left at their initialization:\n  head.projection.{bias,weight} (2)" \
        in warnings[1]


def test_a_block_with_only_a_query_bias_is_refused_naming_the_format(tmp_path):
    state = videomae_state()
    del state["blocks.1.attn.v_bias"]
    path = tmp_path / "broken.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ConversionError) as raised:
        convert_checkpoint(str(path), HINTS)
    assert str(raised.value) == (
        f"{path} looks like an official VideoMAE / VideoMAE V2 .pth (pretraining or fine-tuned), but it has only one "
        "of blocks.1.attn.q_bias and blocks.1.attn.v_bias"
    )
    assert raised.value.exit_status == 4


def test_a_file_in_no_known_format_is_refused_listing_the_formats(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"layer1.conv.weight": torch.ones(2, 2)}, path)
    with pytest.raises(CheckpointError) as raised:
        convert_checkpoint(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path} is a file of 1 tensors (first: layer1.conv.weight), in no format slowmask "
                              "converts; it converts: a Hugging Face VideoMAE directory")
    assert "an official VideoMAE / VideoMAE V2 .pth" in message and "\n" not in message
    assert DEPTH == 2  # the tiny model's depth, which the reports above count


def test_a_safetensors_file_is_read_as_published_weights_or_as_slowmask_weights_by_its_metadata(tmp_path):
    state = videomae_state()
    published, own = str(tmp_path / "videomae.safetensors"), str(tmp_path / "own.safetensors")
    save_file(state, published, metadata={"format": "pt"})
    save_file(state, own, metadata={"format": "slowmask-checkpoint", "cfg": "MVIT:\n  DEPTH: 2\n"})
    assert convert_checkpoint(published, HINTS).report.format == "videomae"
    source = read_source(own)
    assert source.container == "model_state" and source.config == {"cfg": "MVIT:\n  DEPTH: 2\n"}
    assert sorted(source.state) == sorted(state)


def test_a_checkpoint_of_several_networks_is_read_as_one_state_without_its_optimizer(tmp_path):
    path = tmp_path / "several.pt"
    torch.save({"encoder": {"norm.weight": torch.ones(2)}, "predictor": {"proj.weight": torch.ones(1)},
                "opt": {"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": []}, "epoch": 3}, path)
    assert sorted(read_source(str(path)).state) == ["encoder.norm.weight", "predictor.proj.weight"]
