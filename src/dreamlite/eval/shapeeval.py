"""ShapeEval: GenEval's rules and aggregation, with exact detection of the Shapes world in place of its detector.

Every `include` clause needs at least `count` objects of its class (shape), of its colour if given; a
`position: [relation, group]` clause needs each of those objects to stand in that relation (GenEval's rule on
box centres) to every object matched by clause `group`; an `exclude` clause fails the image once its count is
reached. Per-tag accuracy is the mean over images; overall is the unweighted mean of the tag means.
"""

from __future__ import annotations

from ..world.geometry import relations_between
from .detector import detect
from .layout import Problems, geneval_outputs, read_image_array


def evaluate_record(record: dict, detections) -> tuple[bool, list[str]]:
    """(correct, reasons it failed) for one image's detections, as GenEval's `evaluate`."""
    reasons, matched_groups, correct = [], [], True
    for req in record.get("include", []):
        found = [d for d in detections if d.shape == req["class"] and ("color" not in req or d.color == req["color"])]
        matched = len(found) >= req["count"]
        what = f"{req.get('color', '') + ' ' if 'color' in req else ''}{req['class']}"
        if not matched:
            reasons.append(f"expected {req['count']} {what}, found {len(found)}")
        elif "position" in req:
            relation, group = req["position"]
            targets = matched_groups[group] if group < len(matched_groups) else None
            if targets is None:
                matched = False
                reasons.append(f"no {what} to relate to")
            elif not all(relation in relations_between(a, b) for a in found[: req["count"]] for b in targets):
                matched = False
                reasons.append(f"{what} is not {relation} its reference")
        correct &= matched
        matched_groups.append(found[: req["count"]] if matched else None)
    for req in record.get("exclude", []):
        n = sum(d.shape == req["class"] and ("color" not in req or d.color == req["color"]) for d in detections)
        if n >= req["count"]:
            correct = False
            reasons.append(f"expected fewer than {req['count']} {req['class']}, found {n}")
    return correct, reasons


def score_geneval(out: str) -> dict:
    """Score a GenEval-layout folder; returns the summary and per-image rows (for the report)."""
    problems = Problems()
    rows = []
    for folder, record, samples in geneval_outputs(out, problems):
        if "include" not in record:
            problems.add(f"{folder}: record has no 'include' clauses (not a GenEval record)")
            continue
        for path in samples:
            try:
                image = read_image_array(path)
            except Exception as e:  # noqa: BLE001 - any unreadable file is one reported item
                problems.add(f"{path}: {e}")
                continue
            _, detections = detect(image)
            correct, reasons = evaluate_record(record, detections)
            rows.append({"path": path, "prompt": record["prompt"], "tag": record.get("tag", "untagged"),
                         "held_out": bool(record.get("held_out")), "correct": correct, "reasons": reasons})
    return summarize(rows, problems)


def summarize(rows: list[dict], problems: Problems) -> dict:
    def mean(xs):
        return round(sum(xs) / len(xs), 4) if xs else None

    seen = [r for r in rows if not r["held_out"]]
    tags = sorted({r["tag"] for r in seen})
    per_tag = {t: mean([r["correct"] for r in seen if r["tag"] == t]) for t in tags}
    held = [r for r in rows if r["held_out"]]
    summary = {
        "benchmark": "shapeeval",
        "overall": mean([v for v in per_tag.values() if v is not None]),
        "tags": per_tag,
        "images": len(seen),
        "held_out": {"overall": mean([r["correct"] for r in held]), "images": len(held),
                     "tags": {t: mean([r["correct"] for r in held if r["tag"] == t]) for t in sorted({r["tag"] for r in held})}},
        "problems": problems.summary(),
    }
    return {"summary": summary, "rows": rows}
