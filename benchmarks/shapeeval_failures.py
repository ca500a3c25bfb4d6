"""What came out instead: for ShapeEval's failed clauses, the shapes and colours a model drew in their place.

`dreamlite score geneval` counts unmet clauses by kind (`dreamlite.eval.shapeeval.FAILURE_KINDS`). This goes one
step further on a scored folder: for each "wrong colour" clause, the colours the named shape came out in, and
for each failed single-object image, the shapes detected instead of the named one.

    python benchmarks/shapeeval_failures.py runs/eval-base4/geneval [--json OUT.json]
"""

from __future__ import annotations

import argparse
import collections
import json

from dreamlite.eval.detector import detect
from dreamlite.eval.layout import Problems, geneval_outputs, read_image_array
from dreamlite.eval.shapeeval import clause_failure, evaluate_record, failure_kinds


def tally(out: str) -> dict:
    kinds = collections.Counter()
    colours = collections.defaultdict(collections.Counter)  # named colour -> colours the named shape came out in
    shapes = collections.defaultdict(collections.Counter)  # single_object: named shape -> shapes detected
    for _, record, samples in geneval_outputs(out, Problems()):
        if record.get("held_out"):
            continue
        for path in samples:
            _, detections = detect(read_image_array(path))
            correct, _ = evaluate_record(record, detections)
            unmet = failure_kinds(record, detections, correct)
            kinds.update(unmet)
            for req in record.get("include", []):
                if clause_failure(req, detections) == "wrong colour":
                    colours[req["color"]].update(d.color for d in detections if d.shape == req["class"])
            if record.get("tag") == "single_object" and not correct:
                shapes[record["include"][0]["class"]].update([d.shape for d in detections] or ["nothing"])
    return {"unmet clauses": dict(kinds.most_common()),
            "wrong colour, drawn in": {c: dict(n.most_common()) for c, n in sorted(colours.items())},
            "single_object failed, detected instead": {s: dict(n.most_common()) for s, n in sorted(shapes.items())}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a GenEval-layout folder (e.g. runs/eval/geneval)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = tally(args.folder)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"folder": args.folder, **result}, f, indent=2)


if __name__ == "__main__":
    main()
