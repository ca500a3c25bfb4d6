"""Device-style runners reproduce the PyTorch pipeline's images (PSNR >= 35 dB in fp32)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from deploy_helpers import SIZE, export_dir, noise, psnr
from PIL import Image

from dreamlite.deploy.runtime import DeviceRunner
from dreamlite.errors import DreamLiteError


def pipeline_image(pipe, embeds, mask, latents, image=None):
    out = pipe(prompt_embeds=embeds, prompt_embeds_mask=mask, latents=latents, image=image, height=SIZE,
               width=SIZE, output_type="np").images[0]
    return (out * 255).round()


def source_image():
    rng = np.random.RandomState(1)
    return Image.fromarray((rng.rand(SIZE, SIZE, 3) * 255).astype(np.uint8))


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check_runner(folder, pipe, prompt, edit_prompt, latent_tol=1e-3):
    """Images within PSNR 35 dB and final latents within `latent_tol` (relative) of the PyTorch pipeline's."""
    runner = DeviceRunner(str(folder))
    for (embeds, mask), source, seed in ((prompt, None, 3), (edit_prompt, source_image(), 4)):
        kwargs = dict(source=source, latents=noise(seed).numpy())
        got = np.asarray(runner.sample(embeds.numpy(), mask.numpy(), **kwargs), np.float64)
        want = pipeline_image(pipe, embeds, mask, noise(seed), image=source)
        assert psnr(got, want) >= 35, psnr(got, want)
        got_latents = runner.sample(embeds.numpy(), mask.numpy(), output_type="latent", **kwargs)
        want_latents = pipe(prompt_embeds=embeds, prompt_embeds_mask=mask, latents=noise(seed), image=source,
                            height=SIZE, width=SIZE, output_type="latent").images
        assert rel_err(got_latents, want_latents) <= latent_tol
    # The loop really depends on its inputs: other noise gives other latents.
    other = runner.sample(prompt[0].numpy(), prompt[1].numpy(), latents=noise(9).numpy(), output_type="latent")
    assert rel_err(other, want_latents) > 0.1


def test_onnx_runner_matches_pipeline(onnx_dir, mobile_pipe, prompt, edit_prompt):
    manifest = json.loads((onnx_dir / "deploy.json").read_text())
    assert {r["graph"] for r in manifest["parity"]} == {"unet", "vae_encoder", "vae_decoder"}
    assert all(r["ok"] and r["rel_rms"] <= 1e-4 for r in manifest["parity"])
    check_runner(onnx_dir, mobile_pipe, prompt, edit_prompt)


SLOW_EXECUTORCH = pytest.mark.skipif(
    not os.environ.get("DREAMLITE_DEPLOY_SLOW"),
    reason="ExecuTorch's int8 XNNPACK lowering takes ~3 min on 2 cores; set DREAMLITE_DEPLOY_SLOW=1")


def test_executorch_runner_matches_pipeline(tmp_path_factory, mobile_pipe, prompt, edit_prompt):
    pytest.importorskip("executorch.runtime", reason="executorch is not installed (pip install 'dreamlite[deploy]')")
    folder = export_dir(tmp_path_factory, mobile_pipe, "executorch")
    check_runner(folder, mobile_pipe, prompt, edit_prompt)


def test_runner_rejects_bad_inputs(onnx_dir, prompt, tmp_path):
    runner = DeviceRunner(str(onnx_dir))
    with pytest.raises(DreamLiteError, match="shape"):
        runner.generate(np.zeros((1, 5, 7), np.float32))
    with pytest.raises(DreamLiteError, match="at most 48"):
        runner.generate(np.zeros((1, 60, 384), np.float32), np.ones((1, 60)))
    with pytest.raises(DreamLiteError, match="latents"):
        runner.generate(prompt[0].numpy(), prompt[1].numpy(), latents=np.zeros((1, 4, 3, 3), np.float32))
    with pytest.raises(DreamLiteError, match="sampling steps"):  # 0 is not "the default count"
        runner.generate(prompt[0].numpy(), prompt[1].numpy(), steps=0)
    with pytest.raises(DreamLiteError, match="no deploy.json"):
        DeviceRunner(str(tmp_path))


def test_runtime_pipeline_batches_like_the_pipeline(onnx_dir, mobile_pipe):
    """What `dreamlite evaluate --runtime onnx` scores: several images per prompt, image i from generator i."""
    import torch

    from dreamlite.deploy.runtimes import runtime_pipeline

    pipe = runtime_pipeline(mobile_pipe, "onnx", str(onnx_dir))
    prompts = ["a photo of a red circle", "a photo of two stars"]
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3, 4)]
    images = pipe(prompts, num_images_per_prompt=2, generator=gens, output_type="np").images
    assert images.shape == (4, SIZE, SIZE, 3) and np.abs(images[0] - images[1]).max() > 0.05
    alone = pipe(prompts[1], generator=torch.Generator().manual_seed(4), output_type="np").images[0]
    np.testing.assert_allclose(alone, images[3], atol=1e-5)


@pytest.mark.parametrize("runtime", ["onnx", pytest.param("executorch", marks=SLOW_EXECUTORCH)])
def test_int8_export_passes_parity_with_an_int8_unet(tmp_path_factory, mobile_pipe, runtime):
    """W8A8 U-Net exports: calibrated on Shapes inputs, within the int8 tolerance, VAE left in fp32."""
    pytest.importorskip({"onnx": "onnxruntime", "executorch": "executorch.runtime"}[runtime])
    folder = export_dir(tmp_path_factory, mobile_pipe, runtime, quantize="int8")
    rows = {r["graph"]: r for r in json.loads((folder / "deploy.json").read_text())["parity"]}
    assert rows["unet"]["precision"] == "int8" and 0 < rows["unet"]["rel_rms"] <= rows["unet"]["tolerance"]
    assert rows["vae_decoder"]["precision"] == "fp32"


def test_runner_asks_for_negatives_only_when_a_branch_reads_them(onnx_dir):
    """A scale of 1 skips its branch (dreamlite.guidance), so the host need not encode negative prompts."""
    runner = DeviceRunner(str(onnx_dir))
    assert not runner.needs_negatives("generate") and not runner.needs_negatives("edit")  # mobile: no guidance
    runner.manifest = {**runner.manifest, "mode": "base", "guidance_scale": 1.0, "image_guidance_scale": 1.5}
    assert runner.resolve_guidance() == (1.0, 1.5)
    assert not runner.needs_negatives("generate")
    assert runner.needs_negatives("edit")  # image guidance 1.5 keeps the unconditional branch
    assert not runner.needs_negatives("edit", image_guidance=1.0)
    assert runner.needs_negatives("generate", guidance=2.0)


def test_base_mode_runner_guides_in_the_same_interval_as_the_pipeline(onnx_dir, minilm_parts, edit_prompt):
    """The exported graphs serve base mode too: with guidance limited to low noise levels (`guidance_max_sigma`),
    the runner's edit matches the base-mode pipeline's and differs from guiding at every step."""
    from dreamlite.pipeline import DreamLitePipeline

    pipe = DreamLitePipeline(**minilm_parts, text_encoder_name="minilm", mode="base", guidance_scale=3.0,
                             image_guidance_scale=2.0)
    pipe.set_progress_bar_config(disable=True)
    runner = DeviceRunner(str(onnx_dir))
    runner.manifest = {**runner.manifest, "mode": "base", "guidance_scale": 3.0, "image_guidance_scale": 2.0}
    embeds, mask, neg, neg_mask = pipe.encode_prompt(["make the red circle green"], "edit", [source_image()], None, True)
    sigmas = pipe.step_sigmas(6, SIZE, SIZE)
    split = (sigmas[2] + sigmas[3]) / 2

    def pipe_edit(**extra):
        return pipe(prompt_embeds=embeds, prompt_embeds_mask=mask, negative_prompt_embeds=neg,
                    negative_prompt_embeds_mask=neg_mask, latents=noise(5), image=source_image(), height=SIZE,
                    width=SIZE, num_inference_steps=6, guidance_max_sigma=split, output_type="latent", **extra).images

    def run(max_sigma=None, **extra):
        return runner.sample(embeds.numpy(), mask.numpy(), source=source_image(), latents=noise(5).numpy(), steps=6,
                             negative_embeds=neg.numpy(), negative_mask=neg_mask.numpy(),
                             guidance_max_sigma=max_sigma, output_type="latent", **extra)

    want = pipe_edit()
    assert rel_err(run(split), want) <= 1e-3
    assert rel_err(run(None), want) > 1e-2  # the manifest says 1: every step guided
    runner.manifest["guidance_max_sigma"] = split
    assert rel_err(run(None), want) <= 1e-3

    # The noise each step carries on, scaled (`noise_scale`), given or read from the manifest as the pipeline's.
    want_scaled = pipe_edit(noise_scale=1.05)
    assert rel_err(run(noise_scale=1.05), want_scaled) <= 1e-3 and rel_err(want_scaled, want) > 1e-2
    runner.manifest["noise_scale"] = 1.05
    assert rel_err(run(None), want_scaled) <= 1e-3
    del runner.manifest["noise_scale"]

    # An edit from the noised source (strength < 1) starts at the same step from the same latent.
    want_partial = pipe_edit(strength=0.6)
    assert rel_err(run(None, strength=0.6), want_partial) <= 1e-3 and rel_err(want_partial, want) > 1e-2
    with pytest.raises(DreamLiteError, match="strength applies to edits"):
        runner.sample(embeds.numpy(), mask.numpy(), latents=noise(5).numpy(), steps=6, strength=0.6,
                      negative_embeds=neg.numpy(), negative_mask=neg_mask.numpy())
