"""Differentiable pieces of DreamLite sampling shared by the post-training stages.

The pipeline samples under `torch.no_grad`; ReFL and DMD2 need the same trajectory (same sigmas, same
guidance combination, same Euler update) inside training, with gradients where they choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from ..guidance import combine_guidance, guidance_branches, is_guided, reads_negatives
from ..models.text_encoders import pad_states, with_task_prefix
from ..pipeline import set_flow_timesteps
from .objective import batch_latents, predict_velocity


def sampling_sigmas(scheduler_config: dict, steps: int, latent_height: int, latent_width: int) -> torch.Tensor:
    """The `steps + 1` noise levels (last one 0) that `DreamLitePipeline` uses at this latent size."""
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    set_flow_timesteps(scheduler, steps, latent_height, latent_width)
    return scheduler.sigmas.float()


def cat_padded(embeds: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate right-padded (states, mask) batches of different lengths along the batch."""
    states = [e[i][m[i].bool()] for e, m in zip(embeds, masks) for i in range(e.shape[0])]
    out, mask = pad_states(states)
    return out, mask.to(embeds[0].device)


def guided_velocity(unet, latents, source, sigma, embeds, mask, uncond_embeds, uncond_mask, time_ids,
                    guidance: float, image_guidance: float, max_sigma: float = 1.0,
                    conditioning: str = "spatial", is_edit: torch.Tensor | None = None) -> torch.Tensor:
    """The pipeline's base-mode guidance for a batch mixing both tasks, in one U-Net call.

    Branches: (no text, no image), (no text, source), (text, source); v = v_u + g (v_t - v_i) + g_i (v_i - v_u).
    Generation rows have a zero source, so for them v_i = v_u and this is plain text CFG. Only rows whose
    combination differs from v_t evaluate the two unconditional branches: rows at or below `max_sigma` (the
    model's guidance interval, as in the pipeline), and of those only generation rows when g != 1 and edit rows
    when g != 1 or g_i != 1. Without `is_edit` every row counts as an edit.
    """
    n = latents.shape[0]
    sigmas = sigma.expand(n) if sigma.ndim == 0 else sigma
    guided = is_guided(sigmas, max_sigma)
    # The pipeline's rule: a task needs the unconditional branches when its CFG is not the identity.
    needs = {t: reads_negatives(guidance_branches("base", t, guidance, image_guidance)) for t in ("generate", "edit")}
    edit = torch.ones_like(guided) if is_edit is None else is_edit.to(guided.device, torch.bool)
    rows = (guided & torch.where(edit, needs["edit"], needs["generate"])).nonzero().flatten()
    k = len(rows)
    all_embeds, all_mask = cat_padded([uncond_embeds[rows], uncond_embeds[rows], embeds],
                                      [uncond_mask[rows], uncond_mask[rows], mask])
    cond = torch.cat([torch.zeros_like(source[rows]), source[rows], source])
    v = predict_velocity(unet, torch.cat([latents[rows], latents[rows], latents]), cond,
                         torch.cat([sigmas[rows], sigmas[rows], sigmas]), all_embeds, all_mask,
                         torch.cat([time_ids[rows], time_ids[rows], time_ids]), conditioning)
    v_text = v[2 * k:]
    if k == 0:
        return v_text
    guided = combine_guidance({"uncond": v[:k], "image": v[k:2 * k], "text": v_text[rows]}, guidance, image_guidance)
    return v_text.index_copy(0, rows, guided)


def euler_step(latents: torch.Tensor, velocity: torch.Tensor, sigma, sigma_next) -> torch.Tensor:
    """FlowMatchEulerDiscreteScheduler.step for x_t = (1 - s) x0 + s noise."""
    return latents + (sigma_next - sigma) * velocity


def predict_x0(latents: torch.Tensor, velocity: torch.Tensor, sigma) -> torch.Tensor:
    """One-step clean estimate: v = noise - x0 and x_t = (1 - s) x0 + s noise give x0 = x_t - s v."""
    return latents - sigma * velocity


@dataclass
class Conditioning:
    """A batch ready for guided sampling: no condition dropout, plus the unconditional text."""

    x0: torch.Tensor  # data latents (targets)
    source: torch.Tensor  # source latents, zeros for generation rows
    embeds: torch.Tensor
    mask: torch.Tensor
    uncond_embeds: torch.Tensor
    uncond_mask: torch.Tensor
    time_ids: torch.Tensor
    is_edit: torch.Tensor
    prompts: list  # raw prompts / instructions (no task prefix), as rewards read them
    source_pixels: torch.Tensor  # [-1, 1], zeros for generation rows


@torch.no_grad()
def encode_batch(encoder, vae, batch: dict, device) -> Conditioning:
    """Text states with the task prefixes (and the empty prompt, as the pipeline's default negative) + latents."""
    texts = [with_task_prefix(text, task) for text, task in zip(batch["text"], batch["task"])]
    n = len(texts)
    embeds, mask = encoder.encode([""] + texts, "generate")
    embeds, mask = embeds.to(device), mask.to(device)
    cond_embeds, cond_mask = embeds[1:], mask[1:]
    length = int(cond_mask.sum(1).max())
    uncond_embeds, uncond_mask = embeds[:1].expand(n, -1, -1), mask[:1].expand(n, -1)
    short = int(uncond_mask[0].sum())
    is_edit = batch["is_edit"].to(device)
    x0, source, time_ids = batch_latents(vae, batch, batch["is_edit"], device)
    pixels = batch["source"].to(device)
    return Conditioning(x0, source, cond_embeds[:, :length], cond_mask[:, :length], uncond_embeds[:, :short].contiguous(),
                        uncond_mask[:, :short].contiguous(), time_ids, is_edit, list(batch["text"]), pixels)
