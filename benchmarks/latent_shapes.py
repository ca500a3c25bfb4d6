"""How far apart a model's VAE puts the world's shapes, in the U-Net's latent units: the shape twin of latent_colours.

    python benchmarks/latent_shapes.py [MODEL ...] [--background white] [--json OUT]

Why: two latents a distance d apart (L2 over every latent value; the flow's noise has std 1 per value) stop being
told apart above about s = d / (1 + d). A star and a circle of a few latent cells differ only in fine detail,
so with a VAE trained for reconstruction alone the U-Net may settle an object's shape only in the last sampling
steps. For every pair of shapes this renders both at the same place, size and colour, encodes them, and takes
the distance between the two latents; the mean over the world's colours (those allowed on the background) is
reported at the smallest and the largest object size, for each model given.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import torch

from dreamlite.data.transforms import to_tensor
from dreamlite.errors import DreamLiteError
from dreamlite.machine import measurement_stamp
from dreamlite.models.registry import resolve_model
from dreamlite.models.vae import encode_latents, load_vae
from dreamlite.world.render import render
from dreamlite.world.scene import Obj, Scene
from dreamlite.world.spec import load_spec


@torch.no_grad()
def shape_distances(vae, size: int, background: str, side: float) -> dict:
    """{(shape_a, shape_b): mean latent distance over colours} for centred objects of box side `side`."""
    spec = load_spec()
    colours = [c for c in spec.colors if c not in spec.forbidden_on_background.get(background, [])]
    latents = {(shape, colour): encode_latents(vae, to_tensor(render(Scene(size, background, (
        Obj(shape, colour, size / 2, size / 2, side),))))[None])[0] for shape in spec.shapes for colour in colours}
    return {(a, b): float(np.mean([torch.linalg.vector_norm(latents[a, c] - latents[b, c]).item() for c in colours]))
            for a, b in itertools.combinations(spec.shapes, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=["shapes-base"], help="model folders or shipped names (vae/ is used)")
    ap.add_argument("--background", default="white")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()
    spec = load_spec()
    try:
        if args.background not in spec.backgrounds:
            raise DreamLiteError(f"unknown background {args.background!r}; choose one of {', '.join(spec.backgrounds)}")
        vaes = {m: load_vae(resolve_model(m)).float().eval() for m in args.models}
    except (DreamLiteError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    sides = {"smallest": spec.object_size_fraction[0] * args.size, "largest": spec.object_size_fraction[1] * args.size}
    results = {}
    for model, vae in vaes.items():
        results[model] = {}
        for label, side in sides.items():
            pairs = shape_distances(vae, args.size, args.background, side)
            rows = [{"pair": list(p), "distance": round(d, 3), "indistinct_above_noise": round(d / (1 + d), 3)}
                    for p, d in sorted(pairs.items(), key=lambda kv: kv[1])]
            median = float(np.median([r["distance"] for r in rows]))
            results[model][label] = {"side_px": side, "median distance": round(median, 3), "closest": rows[0],
                                     "pairs": rows}
            print(f"{model} [{label} objects, {side:.1f} px]: median {median:.2f}, closest "
                  f"{' / '.join(rows[0]['pair'])} {rows[0]['distance']:.2f} (indistinct above s = "
                  f"{rows[0]['indistinct_above_noise']:.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "background": args.background, "size": args.size, "models": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
