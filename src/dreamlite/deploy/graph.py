"""Export-friendly views of the model: explicit attention and fixed-signature graph wrappers.

Why an attention processor: exporters lower `scaled_dot_product_attention` into slow or unsupported
decompositions (ExecuTorch's SDPA decomposition is slow; Core ML wants plain matmuls), while the explicit
softmax(QK^T)V maps onto the GEMM kernels every backend has. DreamLite attention has one K/V head
(multi-query), so by default Q's heads are folded into the sequence and K/V are used once, without
copying them per head; `expand_kv=True` repeats K/V per head for backends that need equal head counts.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.vae import decode_latents, encode_latents


class ExplicitAttnProcessor:
    """Same maths as diffusers' `DreamLiteAttnProcessor2_0`, written as matmul + softmax + matmul."""

    def __init__(self, expand_kv: bool = False):
        self.expand_kv = expand_kv

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        batch, length, _ = hidden_states.shape

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)

        heads = attn.heads
        head_dim = query.shape[-1] // heads
        kv_heads = key.shape[-1] // head_dim
        query = query.view(batch, -1, heads, head_dim)
        key = key.view(batch, -1, kv_heads, head_dim)
        value = value.view(batch, -1, kv_heads, head_dim)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        query, key, value = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)  # [B, h, L, d]

        bias = _attention_bias(attention_mask, query.dtype)  # [B, 1, 1, M] or None
        scale = head_dim**-0.5
        if self.expand_kv or kv_heads == heads:
            if kv_heads != heads:
                key = key.repeat_interleave(heads // kv_heads, dim=1)
                value = value.repeat_interleave(heads // kv_heads, dim=1)
            scores = torch.matmul(query * scale, key.transpose(-1, -2))
            if bias is not None:
                scores = scores + bias
            out = torch.matmul(scores.softmax(dim=-1), value)  # [B, h, L, d]
        else:
            # Query heads of one K/V group share K/V: fold them into the query length, one GEMM per group.
            group = heads // kv_heads
            q = query.reshape(batch, kv_heads, group * length, head_dim)
            scores = torch.matmul(q * scale, key.transpose(-1, -2))
            if bias is not None:
                scores = scores + bias
            out = torch.matmul(scores.softmax(dim=-1), value).reshape(batch, heads, length, head_dim)
        hidden_states = out.transpose(1, 2).reshape(batch, length, heads * head_dim).to(query.dtype)

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _attention_bias(mask, dtype):
    """The U-Net hands cross-attention an additive [B, 1, M] bias (or a bool mask): make it [B, 1, 1, M]."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.where(mask, 0.0, -10000.0).to(dtype)
    while mask.ndim < 4:
        mask = mask.unsqueeze(1)
    return mask.to(dtype)


def use_explicit_attention(unet, expand_kv: bool = False):
    """Switch every attention layer of `unet` to `ExplicitAttnProcessor` (in place); returns `unet`."""
    unet.set_attn_processor(ExplicitAttnProcessor(expand_kv=expand_kv))
    return unet


class UNetStep(nn.Module):
    """One denoising call with a fixed signature: (canvas, timestep, text states, mask, time ids) -> velocity
    of the target (left) half. The mask is float 0/1 so every runtime can feed it."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, canvas, timestep, encoder_hidden_states, encoder_attention_mask, time_ids):
        out = self.unet(
            canvas,
            timestep=timestep,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            added_cond_kwargs={"time_ids": time_ids},
            return_dict=False,
        )[0]
        return out[..., : canvas.shape[-1] // 2]


class VaeEncoder(nn.Module):
    """[-1, 1] pixels -> model latents (the convention of `dreamlite.models.vae`)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, pixels):
        return encode_latents(self.vae, pixels)


class VaeDecoder(nn.Module):
    """Model latents -> [-1, 1] pixels."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latents):
        return decode_latents(self.vae, latents)


def example_inputs(unet, vae, height: int, width: int, text_len: int, batch: int = 1, seed: int = 0):
    """Deterministic example inputs of each graph at a static size: {"unet": (...), "vae_encoder": ..., ...}."""
    g = torch.Generator().manual_seed(seed)
    factor = 2 ** (len(vae.config.encoder_block_out_channels) - 1)
    h, w = height // factor, width // factor
    channels = unet.config.in_channels
    dim = unet.config.encoder_hid_dim or unet.config.cross_attention_dim
    mask = torch.ones(batch, text_len)
    mask[:, max(1, text_len * 3 // 4):] = 0  # padded tokens, as a short prompt gives
    return {
        "unet": (
            torch.randn(batch, channels, h, 2 * w, generator=g),
            torch.full((batch,), 750.0),
            torch.randn(batch, text_len, dim, generator=g),
            mask,
            torch.tensor([[float(width), float(height)]]).repeat(batch, 1),
        ),
        "vae_encoder": (torch.rand(batch, 3, height, width, generator=g) * 2 - 1,),
        "vae_decoder": (torch.randn(batch, channels, h, w, generator=g),),
    }


GRAPH_INPUTS = {
    "unet": ["canvas", "timestep", "encoder_hidden_states", "encoder_attention_mask", "time_ids"],
    "vae_encoder": ["pixels"],
    "vae_decoder": ["latents"],
}
GRAPH_OUTPUTS = {"unet": ["velocity"], "vae_encoder": ["latents"], "vae_decoder": ["pixels"]}


def graph_modules(unet, vae) -> dict[str, nn.Module]:
    return {"unet": UNetStep(unet).eval(), "vae_encoder": VaeEncoder(vae).eval(), "vae_decoder": VaeDecoder(vae).eval()}
