"""Calibration inputs for static activation quantisation: real Shapes images and captions, at the noise
levels the few-step sampler visits.

Static int8 fixes each activation's range ahead of time, so the ranges must come from the inputs the
device will see: clean latents of rendered scenes, noised to the sampler's sigmas, on the (target | zeros)
canvas for generation and (target | source latent) for editing, with the model's own text states.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image

from ..data.shapes import shapes_sample
from ..errors import DreamLiteError
from ..models.vae import encode_latents
from .flow import flow_sigmas

CALIBRATION_SEED = 20260601  # not a training seed: calibration scenes are not training samples


def _pixels(array: np.ndarray, height: int, width: int) -> torch.Tensor:
    image = Image.fromarray(array)
    if image.size != (width, height):
        image = image.resize((width, height), Image.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def pad_text(embeds: torch.Tensor, mask: torch.Tensor, text_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (or cut padding from) [B, L, D] states to the static length of an exported or compiled graph."""
    valid = int(mask.sum(dim=1).max())
    if valid > text_len:
        raise DreamLiteError(f"a prompt has {valid} tokens but the exported graph takes at most {text_len}"
                             " (re-export with a larger --text-len)")
    out = torch.zeros(embeds.shape[0], text_len, embeds.shape[-1], dtype=torch.float32)
    out_mask = torch.zeros(embeds.shape[0], text_len, dtype=torch.float32)
    n = min(text_len, embeds.shape[1])
    out[:, :n] = embeds[:, :n].float()
    out_mask[:, :n] = mask[:, :n].float()
    return out, out_mask


@torch.no_grad()
def calibration_batches(pipe, num_samples: int, height: int, width: int, text_len: int, steps: int = 4,
                        seed: int = CALIBRATION_SEED) -> Iterator[dict[str, tuple[torch.Tensor, ...]]]:
    """Yields {"unet": inputs, "vae_encoder": inputs, "vae_decoder": inputs} for `num_samples` Shapes samples,
    half text-to-image, half edits, each at one of the sampler's noise levels."""
    if pipe.text_encoder is None:
        raise DreamLiteError("calibration needs the model's text encoder (this model folder has none)")
    from ..models.text_encoders import prompt_encoder_for, with_task_prefix

    encoder = prompt_encoder_for(pipe.text_encoder, pipe.tokenizer, pipe.processor)
    factor = pipe.vae_scale_factor
    lh, lw = height // factor, width // factor
    sigmas = flow_sigmas(steps, lh, lw, dict(pipe.scheduler.config))[:-1]
    g = torch.Generator().manual_seed(seed)
    size = max(height, width)
    for i in range(num_samples):
        task = "edit" if i % 2 else "t2i"
        sample = shapes_sample(seed, i, task, size)
        pixels = _pixels(sample["image"], height, width)
        x0 = encode_latents(pipe.vae, pixels)
        images = None
        if task == "edit":
            source_pixels = _pixels(sample["source"], height, width)
            cond = encode_latents(pipe.vae, source_pixels)
            images = [Image.fromarray(sample["source"])]
        else:
            cond = torch.zeros_like(x0)
        text = with_task_prefix(sample["text"], sample["task"])
        embeds, mask = encoder.encode([text], sample["task"], images)
        embeds, mask = pad_text(embeds, mask, text_len)
        sigma = float(sigmas[i % len(sigmas)])
        noisy = (1 - sigma) * x0 + sigma * torch.randn(x0.shape, generator=g)
        yield {
            "unet": (torch.cat([noisy, cond], dim=3), torch.tensor([sigma * 1000.0]), embeds, mask,
                     torch.tensor([[float(width), float(height)]])),
            "vae_encoder": (pixels,),
            "vae_decoder": (x0,),
        }
