"""The rectified-flow objective of DreamLite as small functions of tensors, a U-Net and (for a batch's latents) a VAE.

x_t = (1 - s) x0 + s noise, target v = noise - x0, on the left (target) half of the canvas only; the right
half is the clean source latent (edit) or zeros (generate). Timesteps follow the scheduler's convention
(t = 1000 s), so the trained U-Net plugs into FlowMatchEulerDiscreteScheduler unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.canvas import conditioning_of, in_context_canvas, size_ids
from ..models.vae import encode_latents


def sample_sigmas(n: int, generator: torch.Generator | None = None, mean: float = 0.0, std: float = 1.0,
                  shift: float = 1.0, device="cpu") -> torch.Tensor:
    """Logit-normal noise levels in (0, 1), optionally shifted towards noise (as SD3)."""
    u = torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))
    return shift * u / (1 + (shift - 1) * u)


def shape_codes(n_shapes: int) -> torch.Tensor:
    """[n_shapes, 2]: one point per shape on the unit circle, all equally far from the background's (0, 0)."""
    angle = torch.arange(n_shapes) * (2 * torch.pi / n_shapes)
    return torch.stack([angle.cos(), angle.sin()], dim=1)


def shape_code_map(coverage: torch.Tensor, factor: int) -> torch.Tensor:
    """Per-shape pixel coverage [B, n_shapes, H, W] -> the latent grid's shape code [B, 2, H/f, W/f]: what the
    shape-tied VAE's two shape channels should hold (the coverage-weighted mean of the codes in each cell)."""
    pooled = F.avg_pool2d(coverage, factor)
    return torch.einsum("sk,bshw->bkhw", shape_codes(coverage.shape[1]).to(pooled), pooled)


def dropout_masks(is_edit: torch.Tensor, generator: torch.Generator | None, p_text: float, p_image: float,
                  p_both: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(drop_text, drop_image) booleans per sample: one uniform draw, disjoint events (InstructPix2Pix).

    Text-to-image samples have no image to drop; their image-only event falls back to keeping everything.
    """
    u = torch.rand(is_edit.shape[0], generator=generator)
    drop_text = u < p_text
    drop_image = (u >= p_text) & (u < p_text + p_image)
    drop_both = (u >= p_text + p_image) & (u < p_text + p_image + p_both)
    drop_text = drop_text | drop_both
    drop_image = (drop_image | drop_both) & is_edit.to(u.device)
    return drop_text, drop_image


def widen_for_channel_conditioning(unet):
    """InstructPix2Pix's initialisation: a spatial/T2I U-Net gets zero-weight input channels for the condition,
    so it starts out computing exactly what it did before."""
    if conditioning_of(unet) == "channel":
        return unet
    config = dict(unet.config)
    config["in_channels"] = 2 * unet.config.in_channels
    wide = type(unet).from_config(config)
    state = unet.state_dict()
    state["conv_in.weight"] = torch.cat([state["conv_in.weight"], torch.zeros_like(state["conv_in.weight"])], dim=1)
    wide.load_state_dict(state)
    return wide


def batch_latents(vae, batch: dict, keep_source: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target latents, source latents, size ids) of a data batch.

    Source latents are zeros on the rows not in `keep_source` (generation rows, dropped images), and only the kept
    sources go through the encoder. Shared by pretraining and the post-training stages' batch encoding.
    """
    x0 = encode_latents(vae, batch["image"].to(device))
    source = torch.zeros_like(x0)
    rows = keep_source.nonzero().flatten()
    if len(rows):
        source[rows] = encode_latents(vae, batch["source"][rows].to(device))
    h, w = batch["image"].shape[-2:]
    return x0, source, size_ids(w, h, x0.shape[0], x0)


def predict_velocity(unet, noisy, condition, sigmas, embeds, mask, time_ids, conditioning="spatial"):
    canvas = in_context_canvas(noisy, condition, conditioning)
    out = unet(canvas, timestep=sigmas * 1000.0, encoder_hidden_states=embeds, encoder_attention_mask=mask,
               added_cond_kwargs={"time_ids": time_ids}, return_dict=False)[0]
    return out[..., : noisy.shape[-1]]


def unchanged_cells(image: torch.Tensor, source: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, 1, h, w] True where every pixel of the latent cell (factor x factor) is the same in source and target."""
    same = (image - source).abs().amax(1, keepdim=True) < 1e-3
    return F.avg_pool2d(same.float(), factor) > 0.999


def flow_matching_loss(unet, x0, condition, embeds, mask, time_ids, sigmas, noise, conditioning="spatial",
                       weights=None):
    """MSE between the predicted and the true velocity on the target half; `weights` ([B, 1, h, w]) scale the
    squared error per latent cell (the mean stays over all cells, so weight 1 everywhere is plain MSE)."""
    s = sigmas.view(-1, 1, 1, 1).to(x0.dtype)
    noisy = (1 - s) * x0 + s * noise
    v = predict_velocity(unet, noisy, condition, sigmas.to(x0.dtype), embeds, mask, time_ids, conditioning)
    if weights is None:
        return F.mse_loss(v.float(), (noise - x0).float())
    return (weights.float() * (v.float() - (noise - x0).float()) ** 2).mean()
