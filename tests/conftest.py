"""Shared fixtures: tiny but complete pipelines built offline (random U-Net/VAE, real tokenizers)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from PIL import Image

from dreamlite.models.presets import build_scheduler, build_unet, build_vae


def randomize_(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Fresh models zero-initialise some outputs; perturb every weight so outputs depend on every input."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module.eval()


def tiny_unet(encoder_hid_dim: int, seed: int = 0, **overrides):
    kwargs = dict(block_out_channels=(32, 64, 64), attention_head_dim=(1, 2, 2), transformer_layers_per_block=(1, 1, 1),
                  cross_attention_dim=64, encoder_hid_dim=encoder_hid_dim, sample_size=4)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    return randomize_(build_unet("tiny", **kwargs), seed)


def tiny_vae(seed: int = 0):
    torch.manual_seed(seed)
    return randomize_(build_vae("tiny"), seed, std=0.01)


@pytest.fixture(scope="session")
def make_unet():
    """`tiny_unet` for test modules (they cannot import conftest: several directories have one)."""
    return tiny_unet


@pytest.fixture(scope="session")
def benchmark():
    """Load a script of benchmarks/ as a module (they are scripts, not a package): `benchmark("scoring")`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, os.path.join(root, "benchmarks", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def run_benchmark():
    """Run a script of benchmarks/ as a user would, from the repo root: `run_benchmark("latent_colours", "--json", p)`."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def run(name: str, *args):
        return subprocess.run([sys.executable, os.path.join(root, "benchmarks", f"{name}.py"), *args],
                              capture_output=True, text=True, cwd=root)

    return run


@pytest.fixture(scope="session")
def qwen_parts():
    from dreamlite.models.text_encoders import tiny_qwen3vl

    text_encoder, tokenizer, processor = tiny_qwen3vl(hidden_size=64)
    return dict(text_encoder=text_encoder, tokenizer=tokenizer, processor=processor,
                unet=tiny_unet(64), vae=tiny_vae(), scheduler=build_scheduler("tiny"))


@pytest.fixture(scope="session")
def minilm_parts():
    from dreamlite.models.text_encoders import load_minilm

    text_encoder, tokenizer = load_minilm()
    return dict(text_encoder=text_encoder, tokenizer=tokenizer, unet=tiny_unet(384), vae=tiny_vae(),
                scheduler=build_scheduler("tiny"))


@pytest.fixture(scope="session")
def minilm_pipe(minilm_parts):
    from dreamlite.pipeline import DreamLitePipeline

    pipe = DreamLitePipeline(**minilm_parts, text_encoder_name="minilm")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, minilm_pipe):
    """A saved model folder (MiniLM weights omitted, as the shipped models do)."""
    from dreamlite.pipeline import DreamLitePipeline

    path = tmp_path_factory.mktemp("model") / "tiny"
    DreamLitePipeline(vae=minilm_pipe.vae, unet=minilm_pipe.unet, scheduler=minilm_pipe.scheduler,
                      text_encoder_name="minilm").save_pretrained(path)
    return path


@pytest.fixture
def source_image():
    rng = np.random.RandomState(0)
    return Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8))
