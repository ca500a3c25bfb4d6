"""Does keeping the source outside an estimated edit region (DiffEdit's mask) make edits succeed?

The shipped base model redraws the whole scene when it edits, so untouched pixels drift (docs/results.md). With
`mask_image="auto"` the pipeline estimates where the instruction acts from the model's own two editing branches
and holds the source latent everywhere else. This scores EditEval without and with the mask, at several mask
thresholds, and how well each mask covers the cells the edit really changes (recall) and how much it frees (size; measured on
`generate_mask`'s own draw for each case, the same estimator as, not the very draw of, the scored arm). The JSON keeps
every case's failure reasons.
`--truth-mask` adds a diagnostic arm that no user has: the ground-truth changed region as the mask. It bounds what
any mask can give: outside it the source is exact, so what still fails there is the edit itself.

    python benchmarks/edit_mask.py MODEL OUT [--thresholds 0.15 0.25 0.35] [--dilation 1] [--maps 8]
        [--truth-mask] [--guidance G --image-guidance I] [--seed 1] [--per-edit-type 5] [--json FILE]

The suite (OUT/suite, edits only, validation seed 1 by default) is built on first use.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from dreamlite.eval.bench import bench_edits
from dreamlite.eval.editeval import score_imgedit, unchanged_mask
from dreamlite.eval.layout import read_edits
from dreamlite.eval.suite import edit_suite
from dreamlite.image_io import load_image
from dreamlite.machine import measurement_stamp
from dreamlite.pipeline import DreamLitePipeline, generators_from_seeds
from dreamlite.world.edits import EditCase


def mask_coverage(pipe, edits_file, images_root, truth_file, seed, **mask_options) -> dict:
    """Per edit type: the share of truly changed latent cells inside the estimated mask, and the mask's size."""
    edits, truth = read_edits(edits_file), read_edits(truth_file)
    keys = list(edits)
    images = [load_image(os.path.join(images_root, edits[k]["id"])) for k in keys]
    masks = pipe.generate_mask(images, [edits[k]["prompt"] for k in keys], output_type="np",
                               generator=generators_from_seeds([seed + i for i in range(len(keys))]), **mask_options)
    by_type = {}
    for key, mask in zip(keys, masks):
        case = EditCase.from_dict(truth[key])
        size = case.source.size
        cell = size // mask.shape[0]
        changed = ~unchanged_mask(case).reshape(mask.shape[0], cell, mask.shape[1], cell).all(axis=(1, 3))
        recall = float((mask.astype(bool) & changed).sum() / max(1, changed.sum()))
        by_type.setdefault(edits[key]["edit_type"], []).append((recall, float(mask.mean())))
    return {t: {"recall": round(float(np.mean([r for r, _ in v])), 3), "size": round(float(np.mean([s for _, s in v])), 3)}
            for t, v in sorted(by_type.items())}


def bench_truth_masks(pipe, edits_file, images_root, truth_file, out, seed, **sampling):
    """`bench_edits` with each case's ground-truth changed pixels as its mask (one call per case: masks differ;
    outputs that exist are kept, so a rerun only rescores)."""
    edits, truth = read_edits(edits_file), read_edits(truth_file)
    os.makedirs(out, exist_ok=True)
    for index, (key, entry) in enumerate(edits.items()):
        if os.path.exists(os.path.join(out, f"{key}.png")):
            continue
        changed = ~unchanged_mask(EditCase.from_dict(truth[key]))
        image = pipe(entry["prompt"], image=load_image(os.path.join(images_root, entry["id"])),
                     mask_image=changed.astype(np.float32), generator=generators_from_seeds([seed + index]),
                     **sampling).images[0]
        image.save(os.path.join(out, f"{key}.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.15, 0.25, 0.35])
    ap.add_argument("--dilation", type=int, default=1)
    ap.add_argument("--maps", type=int, default=8, help="noise draws per mask")
    ap.add_argument("--seed", type=int, default=1, help="suite and sampling seed (1: validation, not the report suite)")
    ap.add_argument("--per-edit-type", type=int, default=5)
    ap.add_argument("--truth-mask", action="store_true", help="add the ground-truth mask arm (a diagnostic bound)")
    ap.add_argument("--guidance", type=float, default=None, help="text guidance (default: the model's)")
    ap.add_argument("--image-guidance", type=float, default=None, help="image guidance (default: the model's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    pipe = DreamLitePipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    files = edit_suite(os.path.join(args.out, "suite"), args.seed, pipe.default_resolution, args.per_edit_type)
    sampling = {"guidance_scale": args.guidance, "image_guidance_scale": args.image_guidance}
    rows = {}
    print("| mask | success | adherence | preservation dB | mask recall / size (mean over types) |")
    print("|---|---|---|---|---|")
    for threshold in [None, *args.thresholds, *(["truth"] if args.truth_mask else [])]:
        name = "none" if threshold is None else "truth" if threshold == "truth" else f"auto-t{threshold}"
        out = os.path.join(args.out, name)
        coverage = None
        if threshold == "truth":
            bench_truth_masks(pipe, *files, out, args.seed, **sampling)
        elif threshold is None:
            bench_edits(pipe, files[0], files[1], out, seed=args.seed, batch_size=16, progress=False, **sampling)
        else:
            options = {"mask_threshold": threshold, "mask_dilation": args.dilation, "num_maps_per_mask": args.maps}
            coverage = mask_coverage(pipe, *files, args.seed, **options)
            bench_edits(pipe, files[0], files[1], out, seed=args.seed, batch_size=16, progress=False,
                        mask_image="auto", mask_options=options, **sampling)
        scored = score_imgedit(out, *files)
        summary = scored["summary"]
        rows[name] = {"cases": [{k: r[k] for k in ("key", "edit_type", "prompt", "success", "preservation", "reasons")}
                                for r in scored["rows"]],
                      "success": summary["success"], "adherence": summary["adherence"],
                      "preservation_db": summary["preservation_db"], "mask": coverage,
                      "types": {t: {k: v[k] for k in ("adherence", "preservation_db", "success")}
                                for t, v in summary["types"].items()}}
        cover = "-" if coverage is None else (f"{np.mean([c['recall'] for c in coverage.values()]):.2f} / "
                                              f"{np.mean([c['size'] for c in coverage.values()]):.2f}")
        print(f"| {name} | {summary['success']:.3f} | {summary['adherence']:.3f} | {summary['preservation_db']:.1f} | "
              f"{cover} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "model": args.model, "seed": args.seed, "dilation": args.dilation,
                       "maps": args.maps, "guidance": pipe.resolve_guidance(args.guidance, args.image_guidance),
                       "masks": rows}, f, indent=2)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
