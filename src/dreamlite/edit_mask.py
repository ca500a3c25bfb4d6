"""Edit masks: where an edit may change the source, and keeping the source latent everywhere else.

A model that redraws the whole scene when it edits loses the untouched pixels (docs/results.md, "Why editing
fails"). DiffEdit (Couairon et al., 2022) finds the region an instruction acts on from the model itself: noise the
source, predict with and without the instruction, and mark where the predictions differ. With in-context editing
the two predictions are the dual-guidance branches that already exist, "text" (instruction + source) and "image"
(empty prompt + source). Sampling then runs as usual inside the mask and holds the source, noised to each step's
level, outside it (blended latent diffusion, Avrahami et al., 2023), so outside the mask the output decodes from
the source latent itself (the VAE's round trip of the source, not its exact pixels).

Unlike diffusers' DiffEdit pipeline, the contrast is instruction against the negative (by default empty) prompt, both
with the source on the canvas, not a target caption against a source caption; and a cell is kept free where its
contrast reaches a fraction of the image's largest (`mask_threshold`), not by diffusers' clamp at
`mask_thresholding_ratio` times the mean. A relative threshold gives a global edit, whose contrast is high everywhere,
a full mask.

Torch only, no pipeline state: the pipeline supplies the U-Net calls.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import DreamLiteError

DEFAULT_ENCODE_STRENGTH = 0.5  # noise level of the contrast predictions (DiffEdit's default)
DEFAULT_THRESHOLD = 0.25  # a latent cell is edited where its contrast is at least this fraction of the image's largest
DEFAULT_DILATION = 1  # cells of margin around the thresholded region
DEFAULT_MAPS = 8  # noise draws averaged per mask


def check_mask_options(encode_strength, threshold, dilation, num_maps):
    """The knobs of `generate_mask`, checked once so every caller rejects a bad value the same way."""
    if not (isinstance(encode_strength, (int, float)) and 0 < encode_strength < 1):
        raise DreamLiteError(f"mask_encode_strength must be in (0, 1), got {encode_strength!r}")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        raise DreamLiteError(f"mask_threshold must be in [0, 1], got {threshold!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise DreamLiteError(f"mask_dilation must be a non-negative integer, got {dilation!r}")
    if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 1:
        raise DreamLiteError(f"num_maps_per_mask must be a positive integer, got {num_maps!r}")


def mask_knobs(options: dict | None) -> tuple:
    """(encode_strength, threshold, dilation, num_maps) from `generate_mask`'s keyword names; an unknown key is
    an error, not ignored."""
    knobs = {"mask_encode_strength": DEFAULT_ENCODE_STRENGTH, "mask_threshold": DEFAULT_THRESHOLD,
             "mask_dilation": DEFAULT_DILATION, "num_maps_per_mask": DEFAULT_MAPS}
    unknown = set(options or {}) - set(knobs)
    if unknown:
        raise DreamLiteError(f"unknown mask option(s) {', '.join(sorted(unknown))}; choose from {', '.join(knobs)}")
    knobs.update(options or {})
    values = tuple(knobs.values())
    check_mask_options(*values)
    return values


def contrast_map(v_instruction: torch.Tensor, v_empty: torch.Tensor) -> torch.Tensor:
    """Per latent cell, how much the instruction moves the prediction: |v_text - v_image| averaged over channels.
    Inputs are (maps, batch, C, h, w) velocities; the result (batch, h, w) averages the noise draws."""
    return (v_instruction - v_empty).abs().float().mean(dim=2).mean(dim=0)


def threshold_map(contrast: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
                  dilation: int = DEFAULT_DILATION) -> torch.Tensor:
    """A binary (batch, h, w) mask: cells whose contrast reaches `threshold` times the image's largest, grown by
    `dilation` cells. Relative to each image's own peak, so a global edit (background, style), whose contrast is
    high everywhere, gets a full mask and a local one a small region."""
    peak = contrast.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    mask = (contrast >= threshold * peak).float()
    if dilation:
        mask = F.max_pool2d(mask[:, None], kernel_size=2 * dilation + 1, stride=1, padding=dilation)[:, 0]
    return mask


def _mask_tensor(mask) -> torch.Tensor:
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    if not isinstance(mask, torch.Tensor):
        raise DreamLiteError(f"mask_image must be 'auto', a PIL image, an array or a tensor, got {type(mask).__name__}")
    return mask.detach().float().cpu()


def latent_mask(mask, batch: int, latent_height: int, latent_width: int, device=None,
                per_prompt: int = 1) -> torch.Tensor:
    """A user's mask as a (batch, 1, h, w) float mask on the latent grid. Values above 0.5 (white) mark where the
    edit may change the source. Accepted: a PIL image, array or tensor of shape (h, w), (rows, h, w) or
    (rows, 1, h, w), or a list of per-row masks (what `generate_mask` returns), at image or latent size, with one
    row for all images, one per prompt (`per_prompt` images each) or one per image. A latent cell may change if
    any of its pixels may."""
    if isinstance(mask, (list, tuple)):
        rows = [_mask_tensor(m).squeeze() for m in mask]
        if not rows or any(r.shape != rows[0].shape or r.dim() != 2 for r in rows):
            raise DreamLiteError("a list of masks needs one or more single-channel masks of one size")
        mask = torch.stack(rows)
    mask = _mask_tensor(mask)
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[:, None]
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise DreamLiteError(f"mask_image must be (h, w), (batch, h, w) or (batch, 1, h, w), got {tuple(mask.shape)}")
    h, w = mask.shape[-2:]
    if (h, w) != (latent_height, latent_width):
        if h % latent_height or w % latent_width or h // latent_height != w // latent_width:
            raise DreamLiteError(f"mask_image is {w}x{h}: expected the image size or the latent size "
                                 f"{latent_width}x{latent_height} (or a whole multiple of it)")
        mask = F.max_pool2d(mask, kernel_size=h // latent_height)
    if per_prompt > 1 and mask.shape[0] * per_prompt == batch:
        mask = mask.repeat_interleave(per_prompt, dim=0)  # one mask per prompt, as generate_mask returns them
    if mask.shape[0] not in (1, batch):
        raise DreamLiteError(f"got {mask.shape[0]} masks for {batch} images")
    return (mask > 0.5).float().expand(batch, -1, -1, -1).to(device)


def keep_source(latents: torch.Tensor, mask: torch.Tensor, source: torch.Tensor, noise: torch.Tensor,
                sigma: float) -> torch.Tensor:
    """The latents with the source, noised to `sigma` along the flow's forward path with the sampler's own
    starting noise, put back outside the mask."""
    noised = (1.0 - sigma) * source + sigma * noise
    return mask * latents + (1.0 - mask) * noised
