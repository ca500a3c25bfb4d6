"""EditEval: ImgEdit's categories scored exactly against each case's ground-truth target scene.

Adherence: the output's detected scene matches the target scene: background, grayscale, and the same
multiset of (shape, colour); every target object that the edit placed at a known spot (kept, recoloured,
replaced, extracted) is within 0.05 S of it; a moved object lies in its named half; an added object may
be anywhere. Preservation: PSNR between output and source over the pixels the edit does not change: outside
the changed objects' boxes and where the exact target render equals the source render (so background and
style edits are judged on the pixels they keep). Success: adherence and preservation >= `min_psnr`.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
from PIL import Image

from ..world.edits import EditCase, in_side
from ..world.render import render
from ..world.spec import load_spec
from .detector import detect
from .layout import Problems, check_edit_entry, read_edits, read_image_array

POSITION_TOLERANCE = 0.05  # of the canvas side
MIN_PSNR = 25.0
PSNR_CAP = 60.0  # identical pixels: a finite number keeps means meaningful


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    if mask.sum() < 0.01 * mask.size:
        return None  # (almost) every pixel is meant to change: preservation does not apply
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[mask].mean()
    return PSNR_CAP if err <= 255.0**2 * 10 ** (-PSNR_CAP / 10) else float(10 * np.log10(255.0**2 / err))


def unchanged_mask(case: EditCase) -> np.ndarray:
    size = case.source.size
    mask = np.all(render(case.source) == render(case.target), axis=2)
    for x0, y0, x1, y1 in case.changed:
        mask[max(0, int(np.floor(y0)) - 1): int(np.ceil(y1)) + 1, max(0, int(np.floor(x0)) - 1): int(np.ceil(x1)) + 1] = False
    return mask[:size, :size]


def adherence(case: EditCase, detected) -> tuple[bool, list[str]]:
    target, reasons = case.target, []
    if detected.background != target.background:
        reasons.append(f"background {detected.background}, expected {target.background}")
    if detected.grayscale != target.grayscale and not _neutral(target):
        reasons.append("grayscale" if detected.grayscale else "not grayscale")
    want = sorted((o.shape, o.color) for o in target.objects)
    got = sorted((o.shape, o.color) for o in detected.objects)
    if want != got:
        reasons.append(f"objects {_names(got)}, expected {_names(want)}")
        return False, reasons
    moved = dict(case.moved)
    tol = POSITION_TOLERANCE * target.size
    for kind in set(want):
        goal = [(i, o) for i, o in enumerate(target.objects) if (o.shape, o.color) == kind]
        found = [o for o in detected.objects if (o.shape, o.color) == kind]
        if not any(all(_placed(i, o, d, moved, case.added, tol, target.size) for (i, o), d in zip(goal, perm))
                   for perm in itertools.permutations(found)):
            reasons.append(f"{kind[1]} {kind[0]} not where the edit puts it")
    return not reasons, reasons


def _neutral(scene) -> bool:
    """Only greys (white, black, gray): such a scene looks the same in grayscale, so the flag cannot be seen."""
    spec = load_spec()
    colours = [spec.backgrounds[scene.background]] + [spec.colors[o.color] for o in scene.objects]
    return all(max(c) - min(c) < 8 for c in colours)


def _placed(i, obj, det, moved, added, tol, size) -> bool:
    if i in moved:
        return in_side(det.cx, det.cy, moved[i], size)
    if i in added:
        return True
    return abs(det.cx - obj.cx) <= tol and abs(det.cy - obj.cy) <= tol


def _names(kinds) -> str:
    return ", ".join(f"{c} {s}" for s, c in kinds) or "none"


def score_case(case: EditCase, output: np.ndarray, source: np.ndarray, min_psnr: float = MIN_PSNR) -> dict:
    """Adherence, preservation and success of one output (any size: the truth is scaled to it)."""
    size = output.shape[1]
    if output.shape[0] != size:
        raise ValueError(f"output is {output.shape[1]}x{output.shape[0]}, expected a square image")
    if case.source.size != size:
        case = _scaled(case, size)
    if source.shape[:2] != output.shape[:2]:
        source = np.asarray(Image.fromarray(source).resize((size, size), Image.LANCZOS))
    detected, _ = detect(output)
    ok, reasons = adherence(case, detected)
    preservation = psnr(output, source, unchanged_mask(case))
    success = ok and (preservation is None or preservation >= min_psnr)
    if ok and not success:
        reasons.append(f"preservation {preservation:.1f} dB < {min_psnr} dB")
    return {"adherence": ok, "preservation": preservation, "success": success, "reasons": reasons}


def _scaled(case: EditCase, size: int) -> EditCase:
    k = size / case.source.size
    return EditCase(case.source.scale(size), case.target.scale(size), case.instruction, case.edit_type,
                    tuple(tuple(v * k for v in box) for box in case.changed), case.moved, case.added)


def score_imgedit(out: str, edits_file: str, images_root: str, truth_file: str, min_psnr: float = MIN_PSNR) -> dict:
    """Score `<out>/<key>.png` for every case of an ImgEdit-schema file that has a ground truth."""
    problems, rows = Problems(), []
    edits = read_edits(edits_file)
    truth = read_edits(truth_file)
    for key, entry in edits.items():
        bad = check_edit_entry(key, entry)
        if bad:
            problems.add(bad)
            continue
        if key not in truth:
            problems.add(f"{key}: no ground truth in {truth_file}")
            continue
        path = os.path.join(out, f"{key}.png")
        if not os.path.exists(path):
            problems.add(f"{key}: missing output {path}")
            continue
        try:
            case = EditCase.from_dict(truth[key])
            output = read_image_array(path)
            source = read_image_array(os.path.join(images_root, entry["id"]))
            result = score_case(case, output, source, min_psnr)
        except Exception as e:  # noqa: BLE001 - one unreadable file or bad truth entry is one reported item
            problems.add(f"{key}: {e}")
            continue
        rows.append({"key": key, "path": path, "prompt": entry["prompt"], "edit_type": entry.get("edit_type", case.edit_type),
                     "held_out": bool(truth[key].get("held_out")), **result, "correct": result["success"]})
    return summarize(rows, problems, min_psnr)


def summarize(rows, problems, min_psnr=MIN_PSNR) -> dict:
    def mean(xs):
        xs = [x for x in xs if x is not None]
        return round(float(np.mean(xs)), 4) if xs else None

    def block(subset):
        types = sorted({r["edit_type"] for r in subset})
        per_type = {t: {"adherence": mean([r["adherence"] for r in subset if r["edit_type"] == t]),
                        "preservation_db": mean([r["preservation"] for r in subset if r["edit_type"] == t]),
                        "success": mean([r["success"] for r in subset if r["edit_type"] == t]),
                        "cases": sum(r["edit_type"] == t for r in subset)} for t in types}
        return {"success": mean([v["success"] for v in per_type.values()]),
                "adherence": mean([v["adherence"] for v in per_type.values()]),
                "preservation_db": mean([r["preservation"] for r in subset]),
                "cases": len(subset), "types": per_type}

    seen, held = [r for r in rows if not r["held_out"]], [r for r in rows if r["held_out"]]
    summary = {"benchmark": "editeval", "min_psnr_db": min_psnr, **block(seen), "held_out": block(held),
               "problems": problems.summary()}
    return {"summary": summary, "rows": rows}


def write_truth(cases: dict[str, EditCase], path: str, held_out: set[str] = frozenset()):
    data = {k: {**c.to_dict(), "held_out": k in held_out} for k, c in cases.items()}
    with open(path, "w") as f:
        json.dump(data, f)
