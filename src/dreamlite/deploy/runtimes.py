"""Pipeline-like callables for each deployment runtime, so evaluators can score what ships.

`runtime_pipeline(pipe, runtime, folder)` gives the pipeline as it runs in `runtime`: unchanged (`pytorch`),
with torchao's W8A8 U-Net (`w8a8`), with the Inductor-compiled U-Net (`inductor-bf16`, `inductor-int8`), or
from exported graphs. For the exports (`onnx`, `executorch`, each fp32 or `-int8`) it returns an object called
like `DreamLitePipeline` (`prompt`, `image`, `generator`, `num_inference_steps`, `output_type`) whose images
come from the exported graphs: the text encoder runs in PyTorch on the host (on a device the embeddings are pre-computed), the
noise is drawn from the same torch generators as the PyTorch pipeline, and everything else is the
device runner. Scores of the runtimes are then directly comparable with the fp32 pipeline's.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from diffusers.pipelines.dreamlite.pipeline_output import DreamLitePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ..errors import DreamLiteError
from . import RUNTIMES
from .runtime import DeviceRunner


class RuntimePipeline:
    def __init__(self, pipe, runner: DeviceRunner):
        self.pipe, self.runner = pipe, runner

    def __call__(self, prompt, image=None, generator=None, num_inference_steps=None, negative_prompt=None,
                 guidance_scale=None, image_guidance_scale=None, guidance_max_sigma=None, noise_scale=None, output_type="pil",
                 num_images_per_prompt=1, **_):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        images = None if image is None else ([image] if isinstance(image, Image.Image) else list(image))
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]  # image i uses generator i
        images = None if images is None else [im for im in images for _ in range(num_images_per_prompt)]
        generators = generator if isinstance(generator, list) else [generator] * len(prompts)
        task = "generate" if images is None else "edit"
        guided = self.runner.needs_negatives(task, guidance_scale, image_guidance_scale)
        out = []
        for i, text in enumerate(prompts):
            source = None if images is None else images[i].convert("RGB")
            embeds, mask, neg, neg_mask = self.pipe.encode_prompt(
                [text], task, None if source is None else [source], negative_prompt, guided)
            latents = randn_tensor(self.runner.latent_shape, generator=generators[i], dtype=torch.float32)
            result = self.runner.sample(
                embeds.numpy(), mask.numpy(), source=source, latents=latents.numpy(), steps=num_inference_steps,
                negative_embeds=None if neg is None else neg.numpy(),
                negative_mask=None if neg_mask is None else neg_mask.numpy(),
                guidance=guidance_scale, image_guidance=image_guidance_scale,  # None: the manifest's (the model's)
                guidance_max_sigma=guidance_max_sigma, noise_scale=noise_scale)
            out.append(result if output_type == "pil" else np.asarray(result, np.float32) / 255.0)
        return DreamLitePipelineOutput(images=out if output_type == "pil" else np.stack(out))


def runtime_pipeline(pipe, runtime: str, folder: str | None = None, height: int | None = None,
                     width: int | None = None, text_len: int = 64, batch: int = 16):
    """`pipe` as it runs in `runtime`; quantises or exports into `folder` first unless it already holds the result.

    `height` / `width` fix the exported graphs' size; `batch` the compiled Inductor graph's (use the number of
    images per pipeline call, so no chunk is padded)."""
    if runtime not in RUNTIMES:
        raise DreamLiteError(f"unknown runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
    if runtime == "pytorch":
        return pipe
    if runtime.startswith("inductor"):
        from .inductor import inductor_pipeline

        return inductor_pipeline(pipe, runtime, text_len=text_len, batch=batch)
    if folder is None:
        raise DreamLiteError("give a folder for the quantised model or the exported graphs")
    if runtime == "w8a8":
        from .quantize import QUANT_INFO, load_quantized, quantize_model

        if not os.path.isfile(os.path.join(folder, QUANT_INFO)):  # written last: a complete quantised folder
            quantize_model(pipe, folder, text_encoder="none")
        return load_quantized(folder)
    if not os.path.isfile(os.path.join(folder, "deploy.json")):
        from .export import export_pipeline

        name, _, quantize = runtime.partition("-")
        export_pipeline(pipe, name, folder, quantize=quantize or None, height=height, width=width, text_len=text_len)
    return RuntimePipeline(pipe, DeviceRunner(folder))
