"""One markdown table from `dreamlite evaluate` summaries: the post-training rows (base, +SFT, +RL, +DMD) or the
compression rows (fp32, W8A8, exported runtimes). Several seeds per row give the spread.

    python benchmarks/eval_table.py base=runs/eval-post/base-s0 sft=runs/eval-post/sft-s0,runs/eval-post/sft-s1 ...

Each argument is LABEL=DIR[,DIR...], one DIR per sampling seed (same suite). A score is the mean over seeds, with
the seed-to-seed range in brackets when there are several. Cost columns come from the summaries' `cost` section:
U-Net evaluations per image (steps x guidance branches) and CPU seconds per image, generate / edit.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

COLUMNS = (  # (header, path into summary.json, digits)
    ("ShapeEval", ("shapeeval", "overall"), 3),
    ("held-out pairs", ("shapeeval", "held_out", "overall"), 3),
    ("DenseEval", ("denseeval", "overall"), 1),
    ("EditEval success", ("editeval", "success"), 3),
    ("preservation dB", ("editeval", "preservation_db"), 1),
    ("held-out edits", ("editeval", "held_out", "success"), 3),
)


def _get(summary: dict, path):
    for key in path:
        summary = summary[key]
    return summary


def _cell(values, digits: int) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    text = f"{np.mean(values):.{digits}f}"
    return text + (f" ({min(values):.{digits}f}-{max(values):.{digits}f})" if len(values) > 1 else "")


def row(label: str, folders: list[str]) -> tuple[list[str], dict]:
    summaries = []
    for folder in folders:
        with open(os.path.join(folder, "summary.json")) as f:
            summaries.append(json.load(f))
    cells = [label, str(len(summaries))] + [_cell([_get(s, p) for s in summaries], d) for _, p, d in COLUMNS]
    cost = summaries[0].get("cost")
    if cost:
        g, e = cost["generate"], cost["edit"]
        cells.append(f"{g['unet_evaluations_per_image']} / {e['unet_evaluations_per_image']}")
        per_image = [(s["cost"]["generate"]["seconds_per_image"], s["cost"]["edit"]["seconds_per_image"]) for s in summaries]
        cells.append(f"{np.mean([p[0] for p in per_image]):.3f} / {np.mean([p[1] for p in per_image]):.3f}")
    else:
        cells += ["-", "-"]
    raw = {"folders": folders, **{h: [_get(s, p) for s in summaries] for h, p, _ in COLUMNS}, "cost": cost}
    return cells, raw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="LABEL=DIR[,DIR...] (one DIR per sampling seed)")
    parser.add_argument("--json", default=None, help="also write the raw values here")
    args = parser.parse_args(argv)
    headers = ["model", "seeds", *(h for h, _, _ in COLUMNS), "U-Net evals / image (gen / edit)", "CPU s / image (gen / edit)"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    raw = {}
    for spec in args.rows:
        label, _, folders = spec.partition("=")
        cells, raw[label] = row(label, folders.split(","))
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=2)


if __name__ == "__main__":
    main()
