"""The DreamLite U-Net, optionally with SDXL's pooled-text path.

diffusers' `DreamLiteUNetModel` adds only the size ids to the time embedding (`addition_embed_type="time"`), so the
prompt reaches the network through cross-attention alone. With `addition_embed_type="text_time"` (SDXL's layout),
`DreamLitePooledTextUNetModel` also adds the prompt's pooled states there, so every ResNet block sees what the
prompt asks for. It pools inside `forward` (masked mean of `encoder_hidden_states`, RMS-normalised), so every
caller (pipeline, trainers, exporters) passes exactly what it passes to the plain model.
"""

from __future__ import annotations

import os

import torch
from diffusers import DreamLiteUNetModel


def pooled_text(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the valid token states, scaled to unit RMS: one vector per prompt, independent of its padding."""
    if mask is None:
        mean = states.mean(dim=1)
    else:
        weights = mask.to(states.dtype).unsqueeze(-1)
        mean = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    return mean * torch.rsqrt(mean.pow(2).mean(dim=-1, keepdim=True) + 1e-6)


class DreamLitePooledTextUNetModel(DreamLiteUNetModel):
    """`DreamLiteUNetModel` whose time embedding also receives the pooled prompt (config `addition_embed_type`
    "text_time", `projection_class_embeddings_input_dim` = text width + 2 x `addition_time_embed_dim`)."""

    def forward(self, sample, timestep, encoder_hidden_states, *args, encoder_attention_mask=None,
                added_cond_kwargs=None, **kwargs):
        added = dict(added_cond_kwargs or {})
        added.setdefault("text_embeds", pooled_text(encoder_hidden_states, encoder_attention_mask))
        return super().forward(sample, timestep, encoder_hidden_states, *args,
                               encoder_attention_mask=encoder_attention_mask, added_cond_kwargs=added, **kwargs)


def unet_class(config: dict) -> type[DreamLiteUNetModel]:
    """The class a U-Net config needs: the pooled-text model for SDXL's "text_time" layout, else diffusers' own."""
    if config.get("addition_embed_type") == "text_time":
        return DreamLitePooledTextUNetModel
    return DreamLiteUNetModel


def saved_unet_class(folder: str) -> type[DreamLiteUNetModel] | None:
    """The class a saved U-Net folder needs (from its config), or None when the folder has no U-Net config."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return None
    return unet_class(DreamLiteUNetModel.load_config(folder))


def load_unet(folder: str, **kwargs) -> DreamLiteUNetModel:
    """A saved U-Net folder (safetensors only), as the class its config needs."""
    return unet_class(DreamLiteUNetModel.load_config(folder)).from_pretrained(folder, use_safetensors=True, **kwargs)
