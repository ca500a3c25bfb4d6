"""Does an editing model copy its source? Velocity error on unchanged and changed latent cells, by noise level.

An edit leaves most of the scene alone. Where it does, the target latent equals the source latent (up to the VAE
encoder's receptive field), so a model that copies from the (target | source) canvas predicts the velocity
almost exactly there. A model that redraws the scene does no better on unchanged cells than on changed ones.
The "copy floor" row is the error that copying the source latent exactly would leave on the unchanged cells,
(x0 - source)^2 / s^2.

    python benchmarks/edit_copy_error.py MODEL [MODEL ...] [--edits 64] [--seed 123]
"""

from __future__ import annotations

import argparse
import json

import torch

from dreamlite.data.shapes import ShapesStream
from dreamlite.data.transforms import collate
from dreamlite.machine import measurement_stamp
from dreamlite.models.canvas import conditioning_of
from dreamlite.models.text_encoders import load_minilm, prompt_encoder_for
from dreamlite.models.vae import vae_scale_factor
from dreamlite.pipeline import DreamLitePipeline
from dreamlite.training.objective import predict_velocity, unchanged_cells
from dreamlite.training.sampling import encode_batch

NOISE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9, 0.98)


@torch.no_grad()
def copy_errors(pipe: DreamLitePipeline, batch: dict, encoder, seed: int) -> dict:
    unet = pipe.unet.eval()
    c = encode_batch(encoder, pipe.vae.eval(), batch, "cpu")  # the post-training stages' batch encoding
    x0, source = c.x0, c.source
    same = unchanged_cells(batch["image"], batch["source"], vae_scale_factor(pipe.vae)).expand_as(x0)
    rows = {"unchanged": {}, "changed": {}, "copy floor": {}}
    for s in NOISE_LEVELS:
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        sigmas = torch.full((x0.shape[0],), s)
        v = predict_velocity(unet, (1 - s) * x0 + s * noise, source, sigmas, c.embeds, c.mask, c.time_ids,
                             conditioning_of(unet))
        err = (v - (noise - x0)) ** 2
        rows["unchanged"][s] = err[same].mean().item()
        rows["changed"][s] = err[~same].mean().item()
        rows["copy floor"][s] = ((x0 - source)[same] ** 2).mean().item() / s**2
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folders (the same VAE resolution)")
    p.add_argument("--edits", type=int, default=64, help="edit triplets from the training world")
    p.add_argument("--seed", type=int, default=123, help="world seed of the triplets (training used 2 to 4)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()

    stream = iter(ShapesStream("edit", args.size, args.seed))
    batch = collate([next(stream) for _ in range(args.edits)])
    text_encoder, tokenizer = load_minilm()
    encoder = prompt_encoder_for(text_encoder, tokenizer)
    print(f"{args.edits} edit triplets of world seed {args.seed}; mean squared velocity error")
    print("| model | cells | " + " | ".join(f"s={s}" for s in NOISE_LEVELS) + " |")
    print("|---|---|" + "---|" * len(NOISE_LEVELS))
    results = {}
    for folder in args.models:
        pipe = DreamLitePipeline.from_pretrained(folder, text_encoder=text_encoder, tokenizer=tokenizer)
        rows = copy_errors(pipe, batch, encoder, args.seed)
        results[folder] = rows
        for name, row in rows.items():
            print(f"| {folder} | {name} | " + " | ".join(f"{row[s]:.3f}" for s in NOISE_LEVELS) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "edits": args.edits, "seed": args.seed, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
