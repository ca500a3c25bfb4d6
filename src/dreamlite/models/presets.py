"""Named model presets, built from diffusers classes.

`paper` is the official DreamLite configuration (389.97M-parameter U-Net); `tiny` is the same
architecture family scaled down so that the whole recipe trains on a 2-core CPU. A preset is plain
data: the diffusers configs of the U-Net, VAE and scheduler, plus the text encoder it expects.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from diffusers import AutoencoderTiny, DreamLiteUNetModel, FlowMatchEulerDiscreteScheduler

from ..errors import DreamLiteError
from .unet import unet_class

# Dynamic shift as in the official pipelines: mu grows linearly with the latent sequence length.
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.16,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


@dataclass(frozen=True)
class Preset:
    name: str
    unet: dict
    vae: dict
    text_encoder: str  # "qwen3-vl" or "minilm"
    resolution: int
    scheduler: dict = field(default_factory=lambda: dict(SCHEDULER_CONFIG))
    description: str = ""


_PAPER_UNET = {
    "block_out_channels": (256, 512, 896),
    "attention_head_dim": (4, 8, 14),  # diffusers' legacy name: these are head *counts* (head dim 64)
    "transformer_layers_per_block": (1, 2, 4),
    "layers_per_block": 2,
    "down_block_types": (
        "DreamLiteCrossAttnNoSelfAttnDownBlock2D",
        "DreamLiteCrossAttnNoSelfAttnDownBlock2D",
        "DreamLiteCrossAttnDownBlock2D",
    ),
    "up_block_types": (
        "DreamLiteCrossAttnUpBlock2D",
        "DreamLiteCrossAttnNoSelfAttnUpBlock2D",
        "DreamLiteUpBlock2D",
    ),
    "ff_mult": 3,
    "num_kv_heads": 1,
    "qk_norm": "rms_norm",
    "use_sep_conv": True,
    "cross_attention_dim": 2304,
    "encoder_hid_dim": 2048,
    "encoder_hid_dim_type": "text_proj_rms",
    "addition_embed_type": "time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 512,  # time ids = (width, height), 256 each
    "in_channels": 4,
    "out_channels": 4,
    "sample_size": 128,
}

_TINY_UNET = {
    **_PAPER_UNET,
    "block_out_channels": (64, 128, 192),
    "attention_head_dim": (2, 4, 6),  # head dim 32
    "transformer_layers_per_block": (1, 1, 2),
    "layers_per_block": 1,
    "cross_attention_dim": 192,
    "encoder_hid_dim": 384,  # MiniLM token states
    "addition_time_embed_dim": 32,
    "projection_class_embeddings_input_dim": 64,
    "sample_size": 16,
}

PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        unet=_PAPER_UNET,
        vae={},  # AutoencoderTiny defaults are TAESDXL's architecture
        text_encoder="qwen3-vl",
        resolution=1024,
        description="Official DreamLite configuration (Qwen3-VL-2B text encoder, 1024 px).",
    ),
    "tiny": Preset(
        name="tiny",
        unet=_TINY_UNET,
        # A 4x (not 8x) tiny VAE: flat-colour shapes at 64 px need the spatial detail, and a 16x16 latent keeps
        # the U-Net's cost the same as 128 px through an 8x VAE while the VAE trains 4x faster.
        vae={"encoder_block_out_channels": (32, 32, 32), "decoder_block_out_channels": (32, 32, 32),
             "num_encoder_blocks": (1, 3, 3), "num_decoder_blocks": (3, 3, 1)},
        text_encoder="minilm",
        resolution=64,
        description="Same architecture family, a few M parameters, trains on a 2-core CPU (MiniLM, 64 px, 4x VAE).",
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise DreamLiteError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def build_unet(preset: str | Preset, **overrides) -> DreamLiteUNetModel:
    preset = get_preset(preset) if isinstance(preset, str) else preset
    config = {**copy.deepcopy(preset.unet), **overrides}
    if config.get("addition_embed_type") == "text_time":  # SDXL's layout: pooled text, then the two size ids
        text_width = config.get("encoder_hid_dim") or config["cross_attention_dim"]
        config["projection_class_embeddings_input_dim"] = text_width + 2 * config["addition_time_embed_dim"]
    return unet_class(config)(**config)


def build_vae(preset: str | Preset, **overrides) -> AutoencoderTiny:
    preset = get_preset(preset) if isinstance(preset, str) else preset
    return AutoencoderTiny(**{**copy.deepcopy(preset.vae), **overrides})


def build_scheduler(preset: str | Preset | None = None) -> FlowMatchEulerDiscreteScheduler:
    preset = get_preset(preset) if isinstance(preset, str) else preset
    return FlowMatchEulerDiscreteScheduler(**(preset.scheduler if preset else SCHEDULER_CONFIG))


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())
