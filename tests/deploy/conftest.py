"""Deploy fixtures: a tiny mobile-mode pipeline (random U-Net/VAE, real MiniLM) and its exports, made once."""

from __future__ import annotations

import pytest
from deploy_helpers import export_dir


@pytest.fixture(scope="session")
def mobile_pipe(minilm_parts):
    from dreamlite.pipeline import DreamLitePipeline

    pipe = DreamLitePipeline(**minilm_parts, text_encoder_name="minilm", mode="mobile")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def prompt(mobile_pipe):
    embeds, mask, _, _ = mobile_pipe.encode_prompt(["a photo of a red circle"], "generate")
    return embeds, mask


@pytest.fixture(scope="session")
def edit_prompt(mobile_pipe):
    embeds, mask, _, _ = mobile_pipe.encode_prompt(["make the red circle green"], "edit")
    return embeds, mask


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory, mobile_pipe):
    pytest.importorskip("onnxruntime")
    return export_dir(tmp_path_factory, mobile_pipe, "onnx")
