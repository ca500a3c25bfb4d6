"""How far apart a model's VAE puts the world's colours, in the U-Net's latent units, and which ones a model confuses.

    python benchmarks/latent_colours.py [MODEL] [--background gray] [--failures FAILURES.json ...] [--json OUT]

Why: the flow sees a difference between two latents only at noise levels where it stands out of the noise. With
x_s = (1 - s) x0 + s noise and noise of std 1 per latent value, two latents a distance d apart stop being told apart
above about s = d / (1 + d). If the VAE puts two colours close together, the U-Net can decide between them only
in the last few sampling steps, after the object is already placed. This measures d for every pair of the
world's colours: a square of the world's largest object size, centred, is rendered and encoded, and the mean
latent of its central 2x2 cells is the colour's latent. The background defaults to gray, on which every colour
may appear.

`--failures` takes JSON files written by `benchmarks/shapeeval_failures.py`. Their "wrong colour, drawn in"
counts are set beside each pair's distance, so one can see whether the pairs a model confuses are the pairs
its VAE puts close together.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json

import numpy as np
import torch

from dreamlite.data.transforms import to_tensor
from dreamlite.errors import DreamLiteError
from dreamlite.machine import measurement_stamp
from dreamlite.models.registry import resolve_model
from dreamlite.models.vae import encode_latents, load_vae, vae_scale_factor
from dreamlite.world.render import render
from dreamlite.world.scene import Obj, Scene
from dreamlite.world.spec import load_spec


@torch.no_grad()
def colour_latents(vae, size: int, background: str) -> tuple[dict, np.ndarray]:
    """{colour: latent of a flat square of it} and the background's latent, both [C] arrays."""
    spec = load_spec()
    side = spec.object_size_fraction[1] * size
    factor = vae_scale_factor(vae)
    centre = slice(size // factor // 2 - 1, size // factor // 2 + 1)
    latents = {}
    for colour in spec.colors:
        scene = Scene(size, background, (Obj("square", colour, size / 2, size / 2, side),))
        z = encode_latents(vae, to_tensor(render(scene))[None])[0]
        latents[colour] = z[:, centre, centre].mean(dim=(1, 2)).numpy()
    empty = encode_latents(vae, to_tensor(render(Scene(size, background)))[None])[0]
    return latents, empty[:, centre, centre].mean(dim=(1, 2)).numpy()


def confusions(paths: list[str]) -> collections.Counter:
    """Unordered colour pair -> how often a named colour came out as the other, over the failure files."""
    counts = collections.Counter()
    for path in paths:
        with open(path) as f:
            drawn = json.load(f).get("wrong colour, drawn in")
        if drawn is None:
            raise DreamLiteError(f"{path} has no 'wrong colour, drawn in': is it from benchmarks/shapeeval_failures.py?")
        for named, outcomes in drawn.items():
            for colour, n in outcomes.items():
                counts[tuple(sorted((named, colour)))] += n
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="shapes-base", help="model folder or shipped name (its vae/ is used)")
    ap.add_argument("--background", default="gray")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--failures", nargs="*", default=[], help="JSON files from benchmarks/shapeeval_failures.py")
    ap.add_argument("--json")
    args = ap.parse_args()
    try:
        backgrounds = load_spec().backgrounds
        if args.background not in backgrounds:
            raise DreamLiteError(f"unknown background {args.background!r}; choose one of {', '.join(backgrounds)}")
        vae = load_vae(resolve_model(args.model)).float().eval()
        confused = confusions(args.failures)
    except (DreamLiteError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    latents, empty = colour_latents(vae, args.size, args.background)
    pairs = sorted((float(np.linalg.norm(latents[a] - latents[b])), a, b) for a, b in itertools.combinations(latents, 2))
    to_background = {c: float(np.linalg.norm(z - empty)) for c, z in latents.items()}
    rows = [{"pair": [a, b], "distance": round(d, 3), "indistinct_above_noise": round(d / (1 + d), 3),
             "confusions": confused[tuple(sorted((a, b)))]} for d, a, b in pairs]
    print(f"{'pair':>16}  distance  indistinct above s  confusions")
    for r in rows:
        print(f"{' / '.join(r['pair']):>16}  {r['distance']:8.2f}  {r['indistinct_above_noise']:18.2f}  {r['confusions']:10d}")
    median_bg = float(np.median(list(to_background.values())))
    print(f"colour to background: median {median_bg:.2f} (indistinct above s = {median_bg / (1 + median_bg):.2f})")
    summary = {"median distance to background": round(median_bg, 3),
               "median distance between colours": round(float(np.median([r["distance"] for r in rows])), 3)}
    total = sum(r["confusions"] for r in rows)
    if total:
        closest = rows[: len(rows) // 4]
        summary["confusions"] = total
        summary["share of confusions on the closest quarter of pairs"] = round(sum(r["confusions"] for r in closest) / total, 3)
        summary["confusion-weighted mean distance"] = round(sum(r["distance"] * r["confusions"] for r in rows) / total, 3)
        summary["mean distance over all pairs"] = round(float(np.mean([r["distance"] for r in rows])), 3)
        print(f"{total} confusions, {summary['share of confusions on the closest quarter of pairs']:.0%} of them on the "
              f"closest quarter of pairs; their mean distance {summary['confusion-weighted mean distance']:.2f} "
              f"against {summary['mean distance over all pairs']:.2f} over all pairs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "model": args.model, "background": args.background, "size": args.size,
                       "failures": args.failures, "summary": summary,
                       "to_background": {c: round(d, 3) for c, d in to_background.items()}, "pairs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
