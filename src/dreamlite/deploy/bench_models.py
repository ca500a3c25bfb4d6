"""Workers of `dreamlite speed` beyond the U-Net forward: the end-to-end 4-step loop and the architecture table.

End to end: 4-step generation and editing with pre-computed text embeddings, diffusers'
`DreamLiteMobilePipeline` (fp32, its own attention) against this project's `DreamLitePipeline` in mobile
mode on its fastest PyTorch U-Net path (bf16 with explicit attention), the same random weights in both.
diffusers' pipeline always calls its text encoder, so its `encode_prompt` is replaced by one that returns
the same pre-computed states: both loops then do exactly U-Net x4 + VAE decode (+ VAE encode to edit).

Architecture table: parameters and FLOPs (counted on the meta device: no memory, no time) and the CPU
latency of one fp32 forward at 1024x1024 of DreamLite's U-Net (on its 2x-wide in-context canvas), SDXL's
U-Net and SANA-0.6B's transformer, from their published diffusers configs with random weights.
"""

from __future__ import annotations

import time

import torch

TEXT_LEN = 64

# Published diffusers configs (stabilityai/stable-diffusion-xl-base-1.0 unet, Efficient-Large-Model/Sana_600M_1024px).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
SANA_600M = dict(
    in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
    num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152, caption_channels=2304,
    mlp_ratio=2.5, sample_size=32, patch_size=1, norm_elementwise_affine=False, norm_eps=1e-6,
)
ARCHITECTURES = ("dreamlite", "sdxl", "sana-0.6b")


def median_time(fn, runs: int, warmup: bool = True) -> tuple[float, list[float]]:
    """Median of `runs` timed calls. Minute-long calls skip the warm-up: first-call overhead is noise there."""
    if warmup:
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], times


# ------------------------------------------------------------------------------------- architectures
def architecture(name: str, size: int = 1024, preset: str = "paper"):
    """(model, make_forward) at `size` px: `make_forward(device)()` runs one denoiser call on that device."""
    from diffusers import SanaTransformer2DModel, UNet2DConditionModel

    from ..models.presets import build_unet
    from .graph import UNetStep, example_inputs

    if name == "dreamlite":
        model = build_unet(preset).eval()

        def inputs(device):
            from ..models.presets import build_vae

            with torch.device("cpu"):  # seeded inputs are drawn on the CPU, then moved (also to "meta")
                unet_inputs = example_inputs(model, build_vae(preset), size, size, TEXT_LEN)["unet"]
            return tuple(x.to(device) for x in unet_inputs)

        step = UNetStep(model)
        def call(device):
            args = inputs(device)
            return lambda: step(*args)

        return model, call
    if name == "sdxl":
        model = UNet2DConditionModel(**SDXL_UNET).eval()
        latent = size // 8

        def call(device):
            x = torch.randn(1, 4, latent, latent, device=device)
            t = torch.full((1,), 750.0, device=device)
            text = torch.randn(1, 77, 2048, device=device)
            added = {"text_embeds": torch.randn(1, 1280, device=device), "time_ids": torch.randn(1, 6, device=device)}
            return lambda: model(x, t, encoder_hidden_states=text, added_cond_kwargs=added, return_dict=False)

        return model, call
    if name == "sana-0.6b":
        model = SanaTransformer2DModel(**SANA_600M).eval()
        latent = size // 32  # DC-AE, 32x compression

        def call(device):
            x = torch.randn(1, 32, latent, latent, device=device)
            t = torch.full((1,), 750.0, device=device)
            text = torch.randn(1, 300, 2304, device=device)
            return lambda: model(x, encoder_hidden_states=text, timestep=t, return_dict=False)

        return model, call
    raise ValueError(f"unknown architecture {name!r}; choose from {ARCHITECTURES}")


def architecture_cost(name: str, size: int = 1024, preset: str = "paper") -> dict:
    """Parameters and forward FLOPs, counted on the meta device (where attention runs as countable matmuls;
    CPU's fused attention kernel is invisible to torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model, make_forward = architecture(name, size, preset)
        forward = make_forward("meta")
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            forward()
    return {"arch": name, "params": sum(p.numel() for p in model.parameters()), "flops": counter.get_total_flops()}


def architecture_worker(name: str, size: int, runs: int) -> dict:
    """Cost plus the measured latency of one fp32 forward (diffusers' default attention)."""
    result = architecture_cost(name, size)
    torch.manual_seed(0)
    model, make_forward = architecture(name, size)
    with torch.no_grad():
        result["median_s"], times = median_time(make_forward("cpu"), runs, warmup=size < 512)
    result["times_s"] = [round(t, 3) for t in times]
    return result


# ------------------------------------------------------------------------------------- end to end
def _shared_components(preset: str):
    from ..models.presets import build_scheduler, build_unet, build_vae

    torch.manual_seed(0)
    unet, vae = build_unet(preset).eval(), build_vae(preset).eval()
    dim = unet.config.encoder_hid_dim or unet.config.cross_attention_dim
    embeds, mask = torch.randn(1, TEXT_LEN, dim), torch.ones(1, TEXT_LEN, dtype=torch.long)
    return unet, vae, build_scheduler(preset), embeds, mask


def e2e_worker(kind: str, preset: str, size: int, runs: int) -> dict:
    """Median seconds of one 4-step generation and one 4-step edit at `size` px (pre-computed embeddings)."""
    import numpy as np
    from PIL import Image

    unet, vae, scheduler, embeds, mask = _shared_components(preset)
    source = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    common = dict(height=size, width=size, num_inference_steps=4, output_type="np")
    if kind == "diffusers-mobile":
        from diffusers import DreamLiteMobilePipeline

        from ..models.text_encoders import tiny_qwen3vl

        text_encoder, tokenizer, processor = tiny_qwen3vl()  # only its dtype is read: prompts are pre-encoded
        pipe = DreamLiteMobilePipeline(text_encoder, tokenizer, processor, vae, unet, scheduler)
        pipe.encode_prompt = lambda *args, **kwargs: (embeds, mask)
        pipe.set_progress_bar_config(disable=True)
        generate = lambda: pipe("pre-encoded", generator=torch.Generator().manual_seed(0), **common)  # noqa: E731
        edit = lambda: pipe("pre-encoded", image=source, generator=torch.Generator().manual_seed(0), **common)  # noqa: E731
    elif kind in ("project-bf16", "project-int8"):
        from ..pipeline import DreamLitePipeline
        from .graph import UNetStep, example_inputs, use_explicit_attention
        from .inductor import InductorUNet, compile_step

        use_explicit_attention(unet)
        if kind == "project-bf16":  # everything in bf16
            pipe = DreamLitePipeline(vae=vae, unet=unet, scheduler=scheduler, mode="mobile").to(dtype=torch.bfloat16)
            embeds = embeds.to(torch.bfloat16)
        else:  # the fastest U-Net path (as `compiled-int8-bf16`) inside the mobile pipeline; VAE in fp32
            example = example_inputs(unet, vae, size, size, embeds.shape[1])["unet"]
            run = compile_step(UNetStep(unet).eval(), example, quantize=True)
            run(*example)  # compile before the timed runs
            pipe = DreamLitePipeline(vae=vae, unet=InductorUNet(unet, run, batch=1, text_len=embeds.shape[1]),
                                     scheduler=scheduler, mode="mobile")
        pipe.set_progress_bar_config(disable=True)
        generate = lambda: pipe(prompt_embeds=embeds, prompt_embeds_mask=mask,  # noqa: E731
                                generator=torch.Generator().manual_seed(0), **common)
        edit = lambda: pipe(image=source, prompt_embeds=embeds, prompt_embeds_mask=mask,  # noqa: E731
                            generator=torch.Generator().manual_seed(0), **common)
    else:
        raise ValueError(f"unknown end-to-end path {kind!r}")
    with torch.no_grad():
        gen_s, gen_times = median_time(generate, runs, warmup=size < 512)
        edit_s, edit_times = median_time(edit, runs, warmup=size < 512)
    return {"path": kind, "generate_s": gen_s, "edit_s": edit_s,
            "times_s": {"generate": [round(t, 3) for t in gen_times], "edit": [round(t, 3) for t in edit_times]}}


E2E_PATHS = ("diffusers-mobile", "project-bf16", "project-int8")
