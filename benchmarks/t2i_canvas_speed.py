"""Steps per second of the whole t2i training step (data, text, VAE, U-Net, AdamW, EMA) on the in-context canvas
and on the target alone (`objective.canvas`), side by side in one run.

    python benchmarks/t2i_canvas_speed.py [--vae shapes-base] [--steps 100] [--rounds 2] [--json F]

Why: `objective.canvas=target` drops the (target | zeros) canvas's zeros half, which halves the U-Net's work but
not the rest of the step; the recipe's budget is wall time, so what counts is the trainer's own rate. Each arm runs
the shipped `tiny-t2i.yaml` for --steps steps through `Trainer.train()`; the rate of the second half of those steps
(metrics.csv, after the text cache and the allocator have warmed up) is its sample. Arms alternate within each
round, so the machine's drift hits both alike; the median over rounds is reported.
"""

import argparse
import csv
import json
import os
import statistics
import tempfile

from dreamlite.errors import DreamLiteError
from dreamlite.machine import measurement_stamp
from dreamlite.models.registry import resolve_model
from dreamlite.training.config import load_config
from dreamlite.training.recipes import stage_config_path
from dreamlite.training.trainer import Trainer

ARMS = ("in_context", "target")


def steady_rate(cfg_overrides: list[str], steps: int) -> float:
    """Steps per second over the second half of a `steps`-step run of the t2i stage."""
    half = steps // 2
    cfg = load_config(stage_config_path("tiny", "t2i"),
                      [f"optim.steps={steps}", f"log.every={half}", f"log.checkpoint_every={10 * steps}", *cfg_overrides])
    with tempfile.TemporaryDirectory() as out:
        Trainer(cfg, out, progress=False).train()
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
    return float(rows[-1]["steps_per_s"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae", default="shapes-base", help="model folder or shipped name whose VAE encodes the batches")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.steps < 4 or args.rounds < 1:
        raise SystemExit("error: --steps must be at least 4 and --rounds at least 1")
    try:
        vae = resolve_model(args.vae)
    except DreamLiteError as e:
        raise SystemExit(f"error: {e}") from None
    rates = {arm: [] for arm in ARMS}
    for _ in range(args.rounds):
        for arm in ARMS:
            rates[arm].append(steady_rate([f"vae={vae}", f"objective.canvas={arm}"], args.steps))
            print(f"{arm:>10}: {rates[arm][-1]:.2f} steps/s", flush=True)
    median = {arm: statistics.median(r) for arm, r in rates.items()}
    ratio = median["target"] / median["in_context"]
    print(f"target / in_context: {ratio:.2f}x the steps per second")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**measurement_stamp(), "steps_per_run": args.steps, "rounds": args.rounds, "vae": args.vae,
                       "steps_per_s": rates, "median_steps_per_s": median, "ratio_target_over_in_context": round(ratio, 3)},
                      f, indent=1)


if __name__ == "__main__":
    main()
