"""ShapeEval: GenEval's rules and aggregation, with exact detection of the Shapes world in place of its detector.

Every `include` clause needs at least `count` objects of its class (shape), of its colour if given; a
`position: [relation, group]` clause needs each of those objects to stand in that relation (GenEval's rule on
box centres) to every object matched by clause `group`; an `exclude` clause fails the image once its count is
reached. Per-tag accuracy is the mean over images; overall is the unweighted mean of the tag means.

The summary also sorts every unmet clause into a kind (`FAILURE_KINDS`), because "expected 1 red cross, found 0"
does not tell a cross in the wrong colour from no cross at all, and the two call for different fixes.
"""

from __future__ import annotations

from collections import Counter

from ..world.geometry import relations_between
from .detector import detect
from .layout import Problems, geneval_outputs, read_image_array


def _matches(req: dict, d) -> bool:
    """Whether detection `d` is an object of the clause's class (and colour, when it names one)."""
    return d.shape == req["class"] and ("color" not in req or d.color == req["color"])


def evaluate_record(record: dict, detections) -> tuple[bool, list[str]]:
    """(correct, reasons it failed) for one image's detections, as GenEval's `evaluate`."""
    reasons, matched_groups, correct = [], [], True
    for req in record.get("include", []):
        found = [d for d in detections if _matches(req, d)]
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
        n = sum(_matches(req, d) for d in detections)
        if n >= req["count"]:
            correct = False
            reasons.append(f"expected fewer than {req['count']} {req['class']}, found {n}")
    return correct, reasons


FAILURE_KINDS = {
    "missing": "no object of the named shape, nor of the named colour",
    "wrong colour": "the named shape is there, in another colour",
    "wrong shape": "the named colour is there, on another shape",
    "too few": "matching objects, fewer than the count",
    "relation": "the objects are there, the position relation fails",
    "too many": "an exclude clause is reached (counting prompts)",
}


def clause_failure(req: dict, detections) -> str | None:
    """Why one `include` clause is unmet (a key of `FAILURE_KINDS`), or None when its objects are there."""
    shape = [d for d in detections if d.shape == req["class"]]
    found = [d for d in shape if _matches(req, d)]
    if len(found) >= req["count"]:
        return None
    if found:
        return "too few"
    if "color" in req and shape:
        return "wrong colour"
    if "color" in req and any(d.color == req["color"] for d in detections):
        return "wrong shape"
    return "missing"


def failure_kinds(record: dict, detections, correct: bool) -> list[str]:
    """The kind of every unmet clause of one image (empty when it passes); `correct` is `evaluate_record`'s
    verdict for the same detections (an image that fails with all its objects there fails a relation)."""
    kinds = [k for k in (clause_failure(req, detections) for req in record.get("include", [])) if k]
    too_many = any(sum(_matches(req, d) for d in detections) >= req["count"] for req in record.get("exclude", []))
    if not correct and not kinds and not too_many:
        kinds.append("relation")
    return kinds + ["too many"] * too_many


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
            try:
                correct, reasons = evaluate_record(record, detections)
                failures = failure_kinds(record, detections, correct)
            except (ValueError, KeyError, TypeError) as e:  # a malformed clause, as DenseEval reports one
                problems.add(f"{path}: bad record ({type(e).__name__}: {e})")
                continue
            rows.append({"path": path, "prompt": record.get("prompt", ""), "tag": record.get("tag", "untagged"),
                         "held_out": bool(record.get("held_out")), "correct": correct, "reasons": reasons,
                         "failures": failures})
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
        "failures": _count_failures(seen),
        "problems": problems.summary(),
    }
    return {"summary": summary, "rows": rows}


def _count_failures(rows: list[dict]) -> dict:
    """Unmet clauses by kind, overall and per tag (rows scored before kinds existed count as none)."""
    def count(rs):
        n = Counter(k for r in rs for k in r.get("failures", ()))
        return {k: n[k] for k in FAILURE_KINDS if n[k]}

    return {"all": count(rows), "tags": {t: count([r for r in rows if r["tag"] == t]) for t in sorted({r["tag"] for r in rows})}}
