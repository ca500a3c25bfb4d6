"""DenseEval, the DPG-Bench analogue: the share of a dense prompt's atomic propositions an image satisfies.

Propositions (written by `world.captions.dense_prompt`): an object of a shape exists, an object has a colour,
a relation holds between two named objects (GenEval's rule), the background is X. Image score = 100 x the
satisfied fraction; a prompt's score is the mean over its images; overall is the mean over prompts.
"""

from __future__ import annotations

from ..world.geometry import relations_between
from .detector import detect
from .layout import Problems, geneval_outputs, read_image_array


def satisfied(prop: dict, detections, background: str) -> bool:
    kind = prop.get("type")
    if kind == "object":
        return any(d.shape == prop["shape"] for d in detections)
    if kind == "color":
        return any(d.shape == prop["shape"] and d.color == prop["color"] for d in detections)
    if kind == "relation":
        a = [d for d in detections if [d.color, d.shape] == list(prop["a"])]
        b = [d for d in detections if [d.color, d.shape] == list(prop["b"])]
        return any(prop["relation"] in relations_between(x, y) for x in a for y in b)
    if kind == "background":
        return background == prop["background"]
    raise ValueError(f"unknown proposition type {kind!r}")


def score_image(record: dict, image) -> tuple[float, list[dict]]:
    scene, detections = detect(image)
    props = record["propositions"]
    failed = [p for p in props if not satisfied(p, detections, scene.background)]
    return 100.0 * (1 - len(failed) / len(props)), failed


def score_dense(out: str) -> dict:
    problems = Problems()
    rows = []
    for folder, record, samples in geneval_outputs(out, problems):
        if not isinstance(record.get("propositions"), list) or not record["propositions"]:
            problems.add(f"{folder}: record has no propositions (not a dense prompt)")
            continue
        for path in samples:
            try:
                image = read_image_array(path)
                score, failed = score_image(record, image)
            except (ValueError, KeyError, TypeError) as e:
                problems.add(f"{path}: bad proposition ({e})")
                continue
            except Exception as e:  # noqa: BLE001 - an unreadable image is one reported item
                problems.add(f"{path}: {e}")
                continue
            rows.append({"path": path, "prompt": record["prompt"], "folder": folder, "score": score,
                         "correct": not failed, "held_out": bool(record.get("held_out")),
                         "reasons": [_describe(p) for p in failed]})
    return summarize(rows, problems)


def _describe(prop: dict) -> str:
    kind = prop["type"]
    if kind == "object":
        return f"no {prop['shape']}"
    if kind == "color":
        return f"no {prop['color']} {prop['shape']}"
    if kind == "relation":
        return f"{' '.join(prop['a'])} not {prop['relation']} {' '.join(prop['b'])}"
    return f"background is not {prop['background']}"


def summarize(rows, problems) -> dict:
    def overall(subset):
        by_prompt = {}
        for r in subset:
            by_prompt.setdefault(r["folder"], []).append(r["score"])
        means = [sum(v) / len(v) for v in by_prompt.values()]
        return (round(sum(means) / len(means), 2) if means else None), len(by_prompt)

    seen, held = [r for r in rows if not r["held_out"]], [r for r in rows if r["held_out"]]
    score, prompts = overall(seen)
    held_score, held_prompts = overall(held)
    summary = {"benchmark": "denseeval", "overall": score, "prompts": prompts, "images": len(seen),
               "held_out": {"overall": held_score, "prompts": held_prompts, "images": len(held)},
               "problems": problems.summary()}
    return {"summary": summary, "rows": rows}
