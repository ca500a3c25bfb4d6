"""Seconds per U-Net training step (forward, backward, AdamW) of the tiny preset, ways of running it side by side.

    python benchmarks/train_step_speed.py [--variants eager,bf16,channels-last,compile] [--widths 32,64,96]
                                          [--batch-size 16] [--timed 6] [--rounds 3] [--json F]

Why: the recipe's budget is wall time, so a faster step is more training. This asks whether a CPU's bf16 units,
the channels-last layout or torch.compile make the trainer's step faster, and what wider or narrower U-Nets cost.
Every variant runs on the same inputs (a t2i-stage canvas: batch x 4 x 16 x 32 latents, 24 text tokens), in
interleaved rounds, so the machine's drift hits all of them alike; the median of the timed steps is reported.
Width W means block channels (W, 2W, 3W) with head dim 32, as the tiny preset (W = 64) has.
"""

import argparse
import json
import statistics
import time

import torch

from dreamlite.machine import measurement_stamp
from dreamlite.models.presets import build_unet


def unet_of_width(width: int):
    if width % 32:
        raise SystemExit(f"width {width} must be a multiple of 32 (GroupNorm's 32 groups)")
    heads = width // 32
    return build_unet("tiny", block_out_channels=(width, 2 * width, 3 * width),
                      attention_head_dim=(heads, 2 * heads, 3 * heads)).train()


def make_step(unet, variant: str, inputs: dict):
    """A closure running one training step of `unet` as `variant` runs it."""
    model, x = unet, inputs["sample"]
    if variant == "channels-last":
        model = unet.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    elif variant == "compile":
        model = torch.compile(unet)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    kwargs = {k: v for k, v in inputs.items() if k != "sample"}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            out = model(x, return_dict=False, **kwargs)[0]
        out[..., : x.shape[-1] // 2].float().pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="eager,bf16,channels-last,compile")
    ap.add_argument("--widths", default="64")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--timed", type=int, default=6, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.manual_seed(0)
    b = args.batch_size
    inputs = {"sample": torch.randn(b, 4, 16, 32), "timestep": torch.rand(b) * 1000,
              "encoder_hidden_states": torch.randn(b, 24, 384), "encoder_attention_mask": torch.ones(b, 24),
              "added_cond_kwargs": {"time_ids": torch.tensor([[64.0, 64.0]]).repeat(b, 1)}}
    arms = {}
    for width in [int(w) for w in args.widths.split(",")]:
        for variant in args.variants.split(","):
            if variant not in ("eager", "bf16", "channels-last", "compile"):
                raise SystemExit(f"unknown variant {variant!r}")
            unet = unet_of_width(width)
            arms[f"w{width}-{variant}"] = (sum(p.numel() for p in unet.parameters()), make_step(unet, variant, inputs))
    times = {name: [] for name in arms}
    for _, step in arms.values():  # warm-up (and compilation) outside the timed rounds
        for _ in range(3):
            step()
    for _ in range(args.rounds):
        for name, (_, step) in arms.items():
            for _ in range(args.timed):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(next(iter(times.values())))
    rows = {}
    for name, (params, _) in arms.items():
        median = statistics.median(times[name])
        rows[name] = {"params_m": round(params / 1e6, 2), "ms_per_step": round(1000 * median),
                      "relative": round(median / base, 2)}
        print(f"{name:>20}  {params / 1e6:6.2f}M params  {1000 * median:6.0f} ms/step  x{median / base:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(),
                       "torch": torch.__version__, "threads": torch.get_num_threads(), "batch_size": b,
                       "steps": rows}, f, indent=1)


if __name__ == "__main__":
    main()
