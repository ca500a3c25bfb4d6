"""What the sampler sees on its way: the predicted clean image at every few steps of one prompt, per seed.

Each row is one seed; each column decodes the clean latent the sampler predicts at that step (x - sigma * v, with
v recovered from two consecutive latents), and the last column is the output. A named object that fades out of
these predictions early shows an empty canvas being chosen while the layout is decided.

    python benchmarks/sampling_path.py shapes-base "a photo of a triangle" --seeds 2,1,11,3 --out path.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from dreamlite.models.vae import decode_latents
from dreamlite.pipeline import DreamLitePipeline, generators_from_seeds


def path_row(pipe, prompt: str, seed: int, every: int, **sampling) -> tuple[np.ndarray, list[float]]:
    size = pipe.default_resolution
    start = pipe.prepare_latents(1, size, size, generators_from_seeds([seed]))  # the noise the sampler starts from
    latents = []
    pipe(prompt, latents=start.clone(), output_type="latent",
         callback_on_step_end=lambda p, i, t, d: latents.append(d["latents"].clone()), **sampling)
    sigmas = pipe.scheduler.sigmas
    xs = [start, *latents]
    shown = list(range(0, len(latents), every))
    clean = [xs[i] - sigmas[i] * (xs[i + 1] - xs[i]) / (sigmas[i + 1] - sigmas[i]) for i in shown] + [latents[-1]]
    with torch.no_grad():
        pixels = decode_latents(pipe.vae, torch.cat(clean)).clamp(-1, 1)
    tiles = ((pixels + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    row = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=90) for t in tiles], axis=1)
    return row, [round(float(sigmas[i]), 2) for i in shown] + [0.0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="model folder or shipped name")
    p.add_argument("prompt")
    p.add_argument("--seeds", default="0,1,2,3", help="comma-separated sampling seeds, one row each")
    p.add_argument("--every", type=int, default=3, help="show every Nth step")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--guidance-max-sigma", type=float, default=None)
    p.add_argument("--noise-scale", type=float, default=None)
    p.add_argument("--out", required=True, help="PNG to write (scaled up 2x)")
    args = p.parse_args()
    pipe = DreamLitePipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    sampling = {"num_inference_steps": args.steps, "guidance_scale": args.guidance,
                "guidance_max_sigma": args.guidance_max_sigma, "noise_scale": args.noise_scale}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row, shown = path_row(pipe, args.prompt, seed, args.every, **sampling)
        rows.append(row)
    grid = np.concatenate(rows, axis=0)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(args.out)
    print(f"{args.out}: rows = seeds {args.seeds}; columns = predicted clean image at sigma {shown[:-1]}, then the output")


if __name__ == "__main__":
    main()
