"""Pack a trained model folder as a shipped model: fp16 safetensors inside the package, loadable by name.

    python scripts/ship_model.py runs/shapes-base/joint/model shapes-base [--recipe runs/shapes-base/recipe.json]
        [--vae runs/shapes-base/vae-decoder/model]   # a VAE with the same encoder, e.g. a decoder fine-tune
        [--guidance 1.5 --image-guidance 1.5 --guidance-max-sigma 0.7]   # sampling defaults, chosen on a validation suite
        [--command "..." --rewards runs/post --rewards-note "..."]         # how it was made, for provenance.json

The MiniLM text encoder is not copied (the folder names it; it loads from the installed package). The result
must stay well under 25 MB per file; this script refuses to write a larger one.
"""

import argparse
import json
import os
import shutil
import subprocess

import torch

from dreamlite.models.registry import SHIPPED_DIR
from dreamlite.models.vae import load_vae
from dreamlite.pipeline import DreamLitePipeline

LIMIT_MB = 25


def _relative(path: str) -> str:
    """Repository-relative path, so provenance does not record one machine's layout."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    return os.path.relpath(os.path.abspath(path), root or os.getcwd())


def _reward_summaries(run: str) -> dict:
    """Steps, time and held-out accuracy of each reward model a post-training run used."""
    summaries = {}
    for task in ("generate", "edit"):
        path = os.path.join(run, f"reward-{task}", "reward_metrics.json")
        if not os.path.isfile(path):
            raise SystemExit(f"{path} is missing: pass the post-training run folder that holds reward-{task}/")
        with open(path) as f:
            metrics = json.load(f)
        summaries[task] = {k: metrics[k] for k in ("steps", "seconds", "held_out_accuracy") if k in metrics}
    return summaries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="trained model folder (diffusers layout)")
    ap.add_argument("name", help="shipped name, e.g. shapes-base")
    ap.add_argument("--recipe", default=None, help="recipe.json of the run, copied next to the weights")
    ap.add_argument("--vae", default=None, help="replace the VAE (a folder with vae/ or an AutoencoderTiny folder)")
    ap.add_argument("--guidance", type=float, default=None, help="default text guidance written into the folder")
    ap.add_argument("--image-guidance", type=float, default=None, help="default image guidance written into the folder")
    ap.add_argument("--guidance-max-sigma", type=float, default=None,
                    help="guide only at noise levels up to this (written into the folder; default: always)")
    ap.add_argument("--command", default=None, help="the command that trained it, recorded in provenance.json")
    ap.add_argument("--rewards", default=None,
                    help="post-training run folder: its reward-*/reward_metrics.json are summarised in provenance.json")
    ap.add_argument("--rewards-note", default=None, help="where the reward models came from, if not trained in that run")
    args = ap.parse_args()
    pipe = DreamLitePipeline.from_pretrained(args.model)
    if args.vae:
        pipe.vae = load_vae(args.vae)
    pipe.unet.to(torch.float16)
    pipe.vae.to(torch.float16)
    out = os.path.join(SHIPPED_DIR, args.name)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    DreamLitePipeline(vae=pipe.vae, unet=pipe.unet, scheduler=pipe.scheduler, mode=pipe.config.mode,
                      text_encoder_name="minilm",
                      guidance_scale=pipe.config.get("guidance_scale") if args.guidance is None else args.guidance,
                      image_guidance_scale=(pipe.config.get("image_guidance_scale") if args.image_guidance is None
                                            else args.image_guidance),
                      guidance_max_sigma=(pipe.config.get("guidance_max_sigma") if args.guidance_max_sigma is None
                                          else args.guidance_max_sigma)).save_pretrained(tmp, safe_serialization=True)
    for root, _, files in os.walk(tmp):
        for f in files:
            size = os.path.getsize(os.path.join(root, f)) / 2**20
            if size > LIMIT_MB:
                raise SystemExit(f"{f} is {size:.1f} MB, over the {LIMIT_MB} MB limit for shipped files")
    provenance = {"source": _relative(args.model), "vae": args.vae and _relative(args.vae), "dtype": "float16",
                  "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()}
    if args.recipe:
        with open(args.recipe) as f:
            provenance["recipe"] = json.load(f)
    if args.command:
        provenance["command"] = args.command
    if args.rewards:
        provenance["rewards"] = _reward_summaries(args.rewards)
    if args.rewards_note:
        provenance["rewards_note"] = args.rewards_note
    with open(os.path.join(tmp, "provenance.json"), "w") as f:
        json.dump(provenance, f, indent=2)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
