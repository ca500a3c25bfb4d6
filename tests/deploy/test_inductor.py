"""The Inductor runtime inside the pipeline: what `dreamlite evaluate --runtime inductor-int8` scores."""

from __future__ import annotations

import pytest
import torch

from dreamlite.errors import DreamLiteError

PROMPTS = ["a photo of a red circle", "a photo of two blue stars", "a photo of a green square left of a yellow cross"]


def _generators():
    return [torch.Generator().manual_seed(s) for s in range(len(PROMPTS))]


def _rel_err(a, b) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def test_inductor_int8_pipeline_matches_fp32_and_batches_in_fixed_chunks(mobile_pipe):
    from dreamlite.deploy.inductor import inductor_pipeline

    reference = mobile_pipe(PROMPTS, generator=_generators(), output_type="latent").images
    pipe = inductor_pipeline(mobile_pipe, "inductor-int8", text_len=48, batch=2, calibration_samples=4)
    assert pipe.unet is not mobile_pipe.unet and pipe.config.mode == "mobile"
    latents = pipe(PROMPTS, generator=_generators(), output_type="latent").images  # a full chunk and a filled-up one
    assert latents.shape == reference.shape
    # int8 on a random-weight U-Net: 0.09-0.19 relative error here, against 1.2-1.5 between two images' latents
    for got, want in zip(latents, reference):
        assert _rel_err(got, want) <= 0.25, _rel_err(got, want)
    assert _rel_err(latents[0], reference[1]) > 1.0
    # image 0 shared its chunk with image 1; alone, its chunk is filled with copies of itself
    alone = pipe(PROMPTS[0], generator=torch.Generator().manual_seed(0), output_type="latent").images[0]
    torch.testing.assert_close(alone, latents[0], atol=1e-4, rtol=0)


def test_inductor_pipeline_rejects_unknown_runtime_and_long_prompts(mobile_pipe):
    from dreamlite.deploy.inductor import InductorUNet, inductor_pipeline

    with pytest.raises(DreamLiteError, match="unknown runtime"):
        inductor_pipeline(mobile_pipe, "inductor-int4", text_len=48)
    unet = InductorUNet(mobile_pipe.unet, lambda *x: x[0], batch=1, text_len=4)
    with pytest.raises(DreamLiteError, match="at most 4"):
        unet(torch.zeros(1, 4, 16, 32), torch.tensor([1.0]), torch.zeros(1, 6, 384), torch.ones(1, 6),
             {"time_ids": torch.tensor([[64.0, 64.0]])})
