"""Pixels <-> latents with the tiny VAE, one convention for training, sampling and export."""

from __future__ import annotations

import os

import torch


def load_vae(folder: str):
    """The AutoencoderTiny of a model folder (its vae/) or of an AutoencoderTiny folder itself, from safetensors."""
    from diffusers import AutoencoderTiny

    sub = os.path.join(folder, "vae")
    return AutoencoderTiny.from_pretrained(sub if os.path.isdir(sub) else folder, use_safetensors=True)


def vae_scale_factor(vae) -> int:
    return 2 ** (len(vae.config.encoder_block_out_channels) - 1)


def encode_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """[-1, 1] pixels -> model latents (scaled and shifted by the VAE's config; identity for TAESD)."""
    return model_latents(vae, vae.encode(pixels).latents)


def model_latents(vae, raw: torch.Tensor) -> torch.Tensor:
    """The encoder's own units -> model latents (applies the config's shift and scaling)."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (raw - shift) * vae.config.scaling_factor


def raw_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Model latents -> the encoder's own units (undoes the config's scaling and shift)."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return latents / vae.config.scaling_factor + shift


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Model latents -> [-1, 1] pixels."""
    return vae.decode(raw_latents(vae, latents)).sample


@torch.no_grad()
def normalise_latents(vae, pixels: torch.Tensor) -> tuple[float, float]:
    """Set the VAE's shift/scaling factors so its latents of `pixels` have mean 0 and std 1 (SD3's convention).

    A tiny VAE trained from scratch has latents of std ~0.3 against unit noise, so the flow's signal would be
    drowned at noise levels where sampling still has to place objects. Returns (shift_factor, scaling_factor).
    """
    raw = vae.encode(pixels).latents.float()
    shift, scale = raw.mean().item(), 1.0 / raw.std().clamp_min(1e-6).item()
    vae.register_to_config(shift_factor=shift, scaling_factor=scale)
    return shift, scale
