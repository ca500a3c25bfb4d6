"""Guidance in a closed interval: does leaving the lowest noise levels unguided help a model?

The shipped `shapes-base` guides every step at or below sigma 0.5 (`guidance_max_sigma`). Kynkaanniemi et al.
(2024) also leave the last, least noisy steps unguided. This runs `dreamlite evaluate` with guidance limited to
[min_sigma, max_sigma]: the steps below `--min-sigma` take the conditional prediction alone, as those above
the model's upper bound already do. It is a probe, not a pipeline option: nothing measured made it one
(docs/results.md, "The lower end of the guidance interval").

    python benchmarks/guidance_floor.py --min-sigma 0.2 -- --model shapes-base --suite SUITE --out OUT [evaluate flags]
"""

from __future__ import annotations

import argparse
import sys

from dreamlite import guidance
from dreamlite.cli import main


def main_floor(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-sigma", type=float, required=True, help="steps below this noise level are unguided")
    parser.add_argument("evaluate", nargs=argparse.REMAINDER, help="-- then the `dreamlite evaluate` flags")
    args = parser.parse_args(argv)
    if not 0 <= args.min_sigma < 1:
        parser.error(f"--min-sigma must be in [0, 1), got {args.min_sigma}")
    flags = args.evaluate[1:] if args.evaluate[:1] == ["--"] else args.evaluate
    upper = guidance.is_guided

    def in_interval(sigma, max_sigma):  # the pipeline's step_scales and its cost count both read this
        return upper(sigma, max_sigma) & (sigma >= args.min_sigma - 1e-6)

    guidance.is_guided = in_interval
    return main(["evaluate", *flags])


if __name__ == "__main__":
    sys.exit(main_floor())
