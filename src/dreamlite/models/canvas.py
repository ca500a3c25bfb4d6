"""How a U-Net reads its condition: DreamLite's (target | condition) canvas, or Pix2Pix-style channel stacking.

One definition for training, sampling and the ablation, so the two cannot drift apart.
"""

from __future__ import annotations

import torch


def conditioning_of(unet) -> str:
    """A U-Net that takes twice the latent channels reads its condition by channels (the ablation arm)."""
    return "channel" if unet.config.in_channels == 2 * unet.config.out_channels else "spatial"


def size_ids(width: int, height: int, rows: int, like: torch.Tensor) -> torch.Tensor:
    """The U-Net's per-row image-size conditioning, (width, height) in pixels: one convention for training and sampling."""
    return torch.tensor([[width, height]], dtype=like.dtype, device=like.device).repeat(rows, 1)


def in_context_canvas(noisy: torch.Tensor, condition: torch.Tensor | None, conditioning: str = "spatial") -> torch.Tensor:
    """DreamLite's (target | condition) along width; 'channel' stacks them as Pix2Pix does (for ablations).

    No condition (None) is the target alone: text-to-image pretraining on half the canvas (`objective.canvas`)."""
    if condition is None:
        return noisy
    return torch.cat([noisy, condition], dim=3 if conditioning == "spatial" else 1)
