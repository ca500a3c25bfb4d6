"""Pixels <-> latents with the tiny VAE, one convention for training, sampling and export."""

from __future__ import annotations

import torch


def vae_scale_factor(vae) -> int:
    return 2 ** (len(vae.config.encoder_block_out_channels) - 1)


def encode_latents(vae, pixels: torch.Tensor) -> torch.Tensor:
    """[-1, 1] pixels -> model latents (scaled and shifted by the VAE's config; identity for TAESD)."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (vae.encode(pixels).latents - shift) * vae.config.scaling_factor


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Model latents -> [-1, 1] pixels."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return vae.decode(latents / vae.config.scaling_factor + shift).sample
