"""Core ML export of the default model, and every runtime's export of the opt-in variants: the pooled-text U-Net
and five-channel latents (shape-tied VAE)."""

import pytest
import torch
from deploy_helpers import SIZE

from dreamlite.models.presets import build_vae
from dreamlite.models.unet import DreamLitePooledTextUNetModel

RUNTIMES = {"onnx": "onnxruntime", "executorch": "executorch.runtime", "coreml": "coremltools"}


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_pooled_text_unet_on_five_latent_channels_exports_with_parity(runtime, tmp_path, minilm_parts, make_unet):
    """The export raises unless every graph matches PyTorch within its tolerance: the pooled prompt (a masked mean
    inside `forward`) and a fifth latent channel must survive each runtime's tracing."""
    pytest.importorskip(RUNTIMES[runtime])
    from dreamlite.deploy.export import export_pipeline
    from dreamlite.pipeline import DreamLitePipeline

    torch.manual_seed(0)
    unet = make_unet(384, addition_embed_type="text_time", in_channels=5, out_channels=5)
    assert isinstance(unet, DreamLitePooledTextUNetModel)
    pipe = DreamLitePipeline(**{**minilm_parts, "unet": unet, "vae": build_vae("tiny", latent_channels=5).eval()},
                             text_encoder_name="minilm", mode="mobile")
    manifest = export_pipeline(pipe, runtime, str(tmp_path), height=SIZE, width=SIZE, text_len=48, log=lambda *a: None)
    assert manifest["latent_channels"] == 5
    assert {r["graph"] for r in manifest["parity"]} == {"unet", "vae_encoder", "vae_decoder"}
    assert all(r["ok"] for r in manifest["parity"])


def test_coreml_export_of_the_default_layout_passes_parity(tmp_path, minilm_parts):
    """The exported graph is run in fp16 as Core ML computes it (prediction itself needs macOS): dtypes fixed at
    trace time must not break that run, and the fp16 graph must match PyTorch's fp32 within tolerance."""
    pytest.importorskip("coremltools")
    from dreamlite.deploy.export import export_pipeline
    from dreamlite.pipeline import DreamLitePipeline

    pipe = DreamLitePipeline(**minilm_parts, text_encoder_name="minilm", mode="mobile")
    manifest = export_pipeline(pipe, "coreml", str(tmp_path), height=SIZE, width=SIZE, text_len=48, log=lambda *a: None)
    assert all(r["ok"] and r["precision"] == "fp16" for r in manifest["parity"])
    assert (tmp_path / manifest["files"]["unet"]).is_dir()
