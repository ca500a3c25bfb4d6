"""VAE round trip on random scenes: reconstruction PSNR, the share of scenes the detector still recovers, and
what the failed ones lost.

    python benchmarks/vae_roundtrip.py VAE_FOLDER [VAE_FOLDER ...] [--num 200] [--size 128] [--json OUT]

A folder is a model folder (with vae/) or an AutoencoderTiny folder. "Recovered" uses the detector test's rule:
same background, same objects (shape, colour), centres within 2 px. A scene that is not recovered counts its
truth objects that no detection matches as "lost", by shape and by colour on its background, so a VAE that
blurs small stars or washes out white-on-beige shows where.
"""

import argparse
import collections
import json

import numpy as np
import torch

from dreamlite.data.transforms import to_tensor, to_uint8
from dreamlite.eval.detector import detect
from dreamlite.machine import measurement_stamp
from dreamlite.models.vae import decode_latents, encode_latents, load_vae
from dreamlite.world.render import render
from dreamlite.world.scene import sample_scene


def unmatched(scene, detected, tol=2.0) -> tuple[list, int]:
    """(truth objects no detection matches, detections left over), greedily, in the scene's order."""
    left = list(detected.objects)
    lost = []
    for o in scene.objects:
        hit = next((d for d in left if (d.shape, d.color) == (o.shape, o.color) and abs(d.cx - o.cx) <= tol
                    and abs(d.cy - o.cy) <= tol), None)
        if hit is None:
            lost.append(o)
        else:
            left.remove(hit)
    return lost, len(left)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vaes", nargs="+")
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--json", default=None, help="also write the report here")
    args = ap.parse_args()
    report = {**measurement_stamp(), "scenes": args.num, "size": args.size, "seed": args.seed, "vaes": {}}
    for folder in args.vaes:
        vae = load_vae(folder).eval()
        rng = np.random.default_rng(args.seed)
        psnrs, ok, objects = [], 0, 0
        lost_shape, lost_colour, extra = collections.Counter(), collections.Counter(), 0
        for _ in range(args.num):
            scene = sample_scene(rng, args.size, allow_held_out=True)
            image = render(scene)
            with torch.no_grad():
                out = to_uint8(decode_latents(vae, encode_latents(vae, to_tensor(image)[None]))[0])
            mse = ((out.astype(np.float64) - image) ** 2).mean()
            psnrs.append(10 * np.log10(255**2 / max(mse, 1e-10)))
            detected = detect(out)[0]
            objects += len(scene.objects)
            lost, left_over = unmatched(scene, detected)
            if scene.background == detected.background and not lost and not left_over:
                ok += 1
                continue
            extra += left_over
            lost_shape.update(o.shape for o in lost)
            lost_colour.update(f"{o.color} on {scene.background}" for o in lost)
        report["vaes"][folder] = {
            "psnr_db": round(float(np.mean(psnrs)), 2), "psnr_min_db": round(float(np.min(psnrs)), 2),
            "detector_recovers": round(ok / args.num, 4),
            "objects": objects, "objects_lost": sum(lost_shape.values()), "extra_detections": extra,
            "lost_by_shape": dict(lost_shape.most_common()), "lost_by_colour_on_background": dict(lost_colour.most_common()),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
