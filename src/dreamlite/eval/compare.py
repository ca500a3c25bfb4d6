"""Is model B better than model A, image by image? A paired sign test on two `dreamlite evaluate` runs.

Two runs on the same suite with the same sampling seeds score the same prompts from the same starting noise, so
every image of A has a partner in B. A difference in mean score mixes what the models do differently with
which prompts are hard; the pairs where exactly one model succeeds carry the difference alone. The p-value is
the exact two-sided sign test on those discordant pairs (McNemar's test): the chance of a split at least this
uneven if neither model were better. DenseEval scores are fractions, so there the pairs are counted as B higher
/ B lower (ties dropped).

    dreamlite compare A=DIR[,DIR...] B=DIR[,DIR...] [--json OUT.json]

DIRs are `dreamlite evaluate --out` folders, one per sampling seed, in the same order for A and B. A benchmark
that neither side scored (e.g. runs of the GenEval prompts alone) is left out; one side alone is an error.
"""

from __future__ import annotations

import json
import os
from math import comb

from ..errors import DreamLiteError

BENCHMARKS = (  # (report label, sub-folder, per-image field, row filter)
    ("ShapeEval images", "geneval", "correct", lambda r: not r["held_out"]),
    ("ShapeEval held-out images", "geneval", "correct", lambda r: r["held_out"]),
    ("DenseEval images", "dense", "score", lambda r: True),
    ("EditEval cases", "edits", "success", lambda r: True),
)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial p-value of `wins` against `losses` under a fair coin."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _rows(folder: str, sub: str) -> dict[str, dict]:
    """The run's per-image rows keyed by the image's path inside its benchmark folder (the same in every run)."""
    path = os.path.join(folder, sub, "scores.json")
    if not os.path.isfile(path):
        raise DreamLiteError(f"{path} is missing: is {folder} a `dreamlite evaluate --out` folder?")
    with open(path) as f:
        rows = json.load(f)["rows"]
    return {r["path"].replace("\\", "/").split(f"/{sub}/", 1)[-1]: r for r in rows}


def compare(a_folders: list[str], b_folders: list[str]) -> dict:
    if len(a_folders) != len(b_folders):
        raise DreamLiteError(f"A has {len(a_folders)} folders and B {len(b_folders)}: give one per seed, in the same order")
    report = {}
    for label, sub, field, keep in BENCHMARKS:
        if not any(os.path.isfile(os.path.join(f, sub, "scores.json")) for f in (*a_folders, *b_folders)):
            continue
        pairs = []
        for fa, fb in zip(a_folders, b_folders):
            ra, rb = _rows(fa, sub), _rows(fb, sub)
            if set(ra) != set(rb) or any(ra[k]["prompt"] != rb[k]["prompt"] for k in ra):
                raise DreamLiteError(f"{fa} and {fb} hold different {sub} images or prompts: compare runs of one suite")
            pairs += [(ra[k][field], rb[k][field]) for k in sorted(ra) if keep(ra[k])]
        if not pairs:
            continue
        wins = sum(1 for a, b in pairs if b > a)
        losses = sum(1 for a, b in pairs if b < a)
        report[label] = {"pairs": len(pairs), "mean A": sum(float(a) for a, _ in pairs) / len(pairs),
                         "mean B": sum(float(b) for _, b in pairs) / len(pairs),
                         "B better": wins, "B worse": losses, "p": sign_test(wins, losses)}
    if not report:
        raise DreamLiteError(f"nothing to compare: no scored benchmark (scores.json) in {', '.join((*a_folders, *b_folders))}; "
                             "are these `dreamlite evaluate --out` folders?")
    return report


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def table(label_a: str, label_b: str, report: dict) -> str:
    lines = [f"| per image | pairs | mean {label_a} | mean {label_b} | {label_b} better | {label_b} worse | sign-test p |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['pairs']} | {r['mean A']:.3f} | {r['mean B']:.3f} | {r['B better']} | {r['B worse']} "
              f"| {_p(r['p'])} |" for name, r in report.items()]
    return "\n".join(lines)
