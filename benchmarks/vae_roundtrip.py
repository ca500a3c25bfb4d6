"""VAE round trip on random scenes: reconstruction PSNR and the share of scenes the detector still recovers.

    python benchmarks/vae_roundtrip.py VAE_FOLDER [VAE_FOLDER ...] [--num 200] [--size 128]

A folder is a model folder (with vae/) or an AutoencoderTiny folder. "Recovered" uses the detector test's rule:
same background, same objects (shape, colour), centres within 2 px.
"""

import argparse
import json

import numpy as np
import torch

from dreamlite.data.transforms import to_tensor, to_uint8
from dreamlite.eval.detector import detect
from dreamlite.machine import measurement_stamp
from dreamlite.models.vae import decode_latents, encode_latents, load_vae
from dreamlite.world.render import render
from dreamlite.world.scene import sample_scene


def recovered(scene, detected, tol=2.0) -> bool:
    if scene.background != detected.background or len(scene.objects) != len(detected.objects):
        return False
    left = list(detected.objects)
    for o in scene.objects:
        hit = next((d for d in left if (d.shape, d.color) == (o.shape, o.color) and abs(d.cx - o.cx) <= tol
                    and abs(d.cy - o.cy) <= tol), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vaes", nargs="+")
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    report = {**measurement_stamp(), "scenes": args.num, "size": args.size, "vaes": {}}
    for folder in args.vaes:
        vae = load_vae(folder).eval()
        rng = np.random.default_rng(args.seed)
        psnrs, ok = [], 0
        for _ in range(args.num):
            scene = sample_scene(rng, args.size, allow_held_out=True)
            image = render(scene)
            with torch.no_grad():
                out = to_uint8(decode_latents(vae, encode_latents(vae, to_tensor(image)[None]))[0])
            mse = ((out.astype(np.float64) - image) ** 2).mean()
            psnrs.append(10 * np.log10(255**2 / max(mse, 1e-10)))
            ok += recovered(scene, detect(out)[0])
        report["vaes"][folder] = {"psnr_db": round(float(np.mean(psnrs)), 2), "psnr_min_db": round(float(np.min(psnrs)), 2),
                                  "detector_recovers": round(ok / args.num, 4)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
