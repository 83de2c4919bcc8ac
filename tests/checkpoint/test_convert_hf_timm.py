"""Hugging Face VideoMAE directories (both layouts of the attention biases) and timm image
ViTs convert into slowmask models that give the source implementation's outputs; a
directory that would load its biases as zeros is refused."""

import json
import logging

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from transformers import VideoMAEForPreTraining, VideoMAEForVideoClassification, VideoMAEModel

from foreign_checkpoints import (
    CLASSES, CROP, DEPTH, DIM, FRAMES, HEADS, HIDDEN, PATCH, TUBELET, assert_close, encoder_tokens, nonzero_,
    slowmask_model, still_clip, tiny_hf_config,
)
from slowmask.checkpoint.convert import ConversionError, convert_checkpoint


def saved(model, path) -> str:
    nonzero_(dict(model.named_parameters()))
    model.eval().save_pretrained(path)
    return str(path)


def rename_to_module_names(path: str) -> None:
    """Rewrite a directory's weights with transformers 5's module names of the biases (a
    state dict saved as it is), where save_pretrained writes the published q_bias / v_bias."""
    file = f"{path}/model.safetensors"
    state = load_file(file)
    renamed = {key.replace("attention.attention.q_bias", "attention.attention.query.bias")
               .replace("attention.attention.v_bias", "attention.attention.value.bias"): value
               for key, value in state.items()}
    save_file(renamed, file, metadata={"format": "pt"})


def clip_pair(seed: int):
    clip = torch.randn(2, 3, FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(seed))
    return clip, clip.transpose(1, 2)  # transformers takes (B, T, C, H, W)


@pytest.mark.parametrize("layout", ["q_bias / v_bias", "query.bias / value.bias"])
def test_a_hf_classifier_directory_gives_its_logits_in_either_bias_layout(tmp_path, layout, caplog):
    hf = VideoMAEForVideoClassification(tiny_hf_config())
    path = saved(hf, tmp_path / "hf")
    if layout == "query.bias / value.bias":
        rename_to_module_names(path)
    biases = [key for key in load_file(f"{path}/model.safetensors") if key.startswith("videomae.encoder.layer.0.")
              and "bias" in key and ".attention.attention." in key]
    assert sorted(key.rpartition("attention.")[2] for key in biases) == sorted(layout.split(" / "))
    converted = convert_checkpoint(path)
    assert converted.report.format == "hf_videomae" and converted.report.unused == []
    assert f"attention biases: {layout}; the key bias is zero" in " ".join(converted.report.notes)
    model = slowmask_model(converted.config, converted.state)
    clip, hf_clip = clip_pair(3)
    with torch.no_grad():
        # transformers' fc_norm keeps nn.LayerNorm's eps 1e-5 (VideoMAE's: 1e-6): a warning, and a small difference.
        assert_close(model(clip), hf(hf_clip).logits, relative=1e-5)
    assert converted.report.warnings == [
        "transformers' fc_norm uses eps 1e-05 (VideoMAE's own and slowmask's 1e-06): its logits differ slightly"
    ]


@pytest.mark.parametrize("cls", [VideoMAEModel, VideoMAEForPreTraining])
def test_hf_encoder_directories_give_their_tokens(tmp_path, cls):
    hf = cls(tiny_hf_config(use_mean_pooling=False))
    path = saved(hf, tmp_path / "hf")
    converted = convert_checkpoint(path)
    decoder = [key for key in converted.report.unused if not key.startswith(("decoder.", "encoder_to_decoder", "mask_token"))]
    assert decoder == []
    assert bool(converted.report.unused) == (cls is VideoMAEForPreTraining)
    model = slowmask_model(converted.config)
    model.load_state_dict(converted.state, strict=False)
    clip, hf_clip = clip_pair(4)
    encoder = hf if cls is VideoMAEModel else hf.videomae
    with torch.no_grad():
        assert_close(encoder_tokens(model, clip), encoder(hf_clip).last_hidden_state)


def test_a_hf_directory_without_its_attention_biases_is_refused(tmp_path):
    path = saved(VideoMAEForVideoClassification(tiny_hf_config()), tmp_path / "hf")
    file = f"{path}/model.safetensors"
    save_file({k: v for k, v in load_file(file).items() if not k.endswith(("q_bias", "v_bias"))}, file)
    with pytest.raises(ConversionError) as raised:
        convert_checkpoint(path)
    assert str(raised.value) == (
        f"{path} looks like a Hugging Face VideoMAE directory (VideoMAEModel, VideoMAEForPreTraining, "
        "VideoMAEForVideoClassification), but its config.json sets qv_bias but it holds neither "
        "videomae.encoder.layer.0.attention.attention.q_bias / v_bias (transformers 4) nor "
        "videomae.encoder.layer.0.attention.attention.query.bias / value.bias (transformers 5): the biases would "
        "load as zeros"
    )


def test_a_directory_of_another_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "timesformer"}))
    save_file({"w": torch.ones(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(Exception) as raised:
        convert_checkpoint(str(tmp_path))
    assert str(raised.value).startswith(
        f"{tmp_path} is a Hugging Face directory of model_type 'timesformer', in no format slowmask converts")


@pytest.mark.parametrize("global_pool", ["token", "avg"])
def test_a_timm_image_vit_inflated_gives_the_image_models_outputs_on_a_still_clip(tmp_path, global_pool, caplog):
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=CROP, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, mlp_ratio=HIDDEN / DIM,
        num_classes=CLASSES, global_pool=global_pool,
    ).eval()
    nonzero_(dict(vit.named_parameters()))
    if global_pool == "token":  # as a file
        path = tmp_path / "vit.pth"
        torch.save({"model": vit.state_dict()}, path)
    else:  # as a hub folder: timm's config.json names an architecture
        path = tmp_path / "vit"
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"architecture": "vit_tiny", "global_pool": "avg"}))
        save_file(vit.state_dict(), str(path / "model.safetensors"))
    converted = convert_checkpoint(str(path), {"num_frames": TUBELET, "num_heads": HEADS})
    assert converted.report.format == "timm_vit" and converted.report.unused == []
    assert converted.config["MVIT.PATCH_KERNEL"] == [TUBELET, PATCH, PATCH]
    model = slowmask_model(converted.config, converted.state)
    image = torch.randn(2, 3, CROP, CROP, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_close(model(still_clip(image, TUBELET)), vit(image))
    kernel = converted.state["patch_embed.proj.weight"]
    assert torch.equal(kernel[:, :, 0] * TUBELET, vit.patch_embed.proj.weight.detach())
