"""The shipped default model: small fp16 files in the package, loadable by name, generates and edits."""

import os

import numpy as np
import pytest
import torch

from dreamlite.cli import main
from dreamlite.models.registry import SHIPPED_DIR, default_model, shipped_models


@pytest.mark.parametrize("name", ["shapes-base", "shapes-mobile"])
def test_shipped_models_are_small_safetensors(name):
    assert name in shipped_models()
    for root, _, files in os.walk(os.path.join(SHIPPED_DIR, name)):
        for f in files:
            assert os.path.getsize(os.path.join(root, f)) < 25 * 2**20, f
            assert not f.endswith((".bin", ".pt", ".ckpt")), f"pickled weights shipped: {f}"


def test_default_is_the_4_step_mobile_model():
    from dreamlite.pipeline import DreamLitePipeline

    assert default_model() == "shapes-mobile"
    mobile, base = (DreamLitePipeline.from_pretrained(n) for n in ("shapes-mobile", "shapes-base"))
    assert mobile.config.mode == "mobile" and base.config.mode == "base"
    # Distilled, not copied: the U-Nets differ.
    assert any((a - b).abs().max() > 1e-3 for a, b in zip(mobile.unet.parameters(), base.unet.parameters()))
    # ... from the shipped base: both sample in one latent space (post-training freezes the VAE).
    assert mobile.vae.config.scaling_factor == base.vae.config.scaling_factor
    assert mobile.vae.config.shift_factor == base.vae.config.shift_factor
    mobile_vae, base_vae = mobile.vae.state_dict(), base.vae.state_dict()
    assert mobile_vae.keys() == base_vae.keys()
    assert all(torch.equal(mobile_vae[k], base_vae[k]) for k in mobile_vae)


def test_default_model_generates_and_edits_from_the_cli(tmp_path):
    from PIL import Image

    x, y = tmp_path / "x.png", tmp_path / "y.png"
    assert main(["generate", "a photo of a red circle left of a blue square", "-o", str(x), "--steps", "6"]) == 0
    assert main(["edit", str(x), "make the red circle green", "-o", str(y), "--steps", "6"]) == 0
    from dreamlite.pipeline import DreamLitePipeline

    side = DreamLitePipeline.from_pretrained(default_model()).default_resolution
    a, b = np.asarray(Image.open(x)), np.asarray(Image.open(y))
    assert a.shape == b.shape == (side, side, 3) and a.std() > 0


def test_shipped_weights_compute_in_fp32():
    from dreamlite.pipeline import DreamLitePipeline

    for name in ("shapes-base", "shapes-mobile"):
        pipe = DreamLitePipeline.from_pretrained(name)
        assert pipe.unet.dtype == torch.float32 and pipe.vae.dtype == torch.float32
        assert pipe.config.text_encoder_name == "minilm"
