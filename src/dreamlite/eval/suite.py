"""The ready evaluation suite: GenEval-schema prompts (six tags), dense prompts, ImgEdit-schema edits (nine
types), each with a held-out split built on the world's held-out colour-shape pairs. Pure function of a seed.

Layout of a suite folder:
  geneval.jsonl                  GenEval `evaluation_metadata.jsonl` schema (+ `held_out`)
  dense.jsonl                    dense prompts with their atomic propositions
  edits/basic_edit.json          ImgEdit schema {key: {id, prompt, edit_type}}
  edits/images/<key>.png         edit sources (the image root)
  edits/truth.json               exact ground truth per key (source/target scenes, changed boxes)
With `truth=True` also ground-truth outputs in the bench layouts (`truth/geneval`, `truth/dense`,
`truth/edits`): the ceiling every scorer must reach, and a check of the scorers themselves.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from ..atomic import atomic_dir, check_replaceable
from ..errors import DreamLiteError
from ..world.captions import GENEVAL_TAGS, dense_prompt, geneval_record, scene_for_record
from ..world.edits import EDIT_TYPES, sample_edit
from ..world.render import render
from ..world.spec import load_spec
from .editeval import write_truth
from .layout import sample_folder, sample_path


def _held_out_in(scene) -> set:
    return {(o.color, o.shape) for o in scene.objects} & load_spec().held_out


def build_records(seed: int, per_tag: int, held_out_per_tag: int):
    rng = np.random.default_rng([seed, 1])
    records = [geneval_record(rng, tag) for tag in GENEVAL_TAGS for _ in range(per_tag)]
    for tag in ("colors", "color_attr"):
        for _ in range(held_out_per_tag):
            records.append({**geneval_record(rng, tag, held_out_only=True), "held_out": True})
    return records


def build_dense(seed: int, n: int, size: int):
    rng = np.random.default_rng([seed, 2])
    return [dense_prompt(rng, size) for _ in range(n)]


def build_edits(seed: int, per_type: int, held_out: int, size: int):
    """{key: EditCase} and the keys of the held-out split (edits that create a held-out pair)."""
    rng = np.random.default_rng([seed, 3])
    cases = {}
    for edit_type in EDIT_TYPES:
        for i in range(per_type):
            case = None
            while case is None:
                case = sample_edit(rng, size, edit_type)
            cases[f"{edit_type}-{i:03d}"] = case
    held_keys = set()
    types = ("add", "replace", "adjust")
    for i in range(held_out):
        while True:
            case = sample_edit(rng, size, types[i % len(types)], allow_held_out=True)
            if case is not None and _held_out_in(case.target) - _held_out_in(case.source) and not _held_out_in(case.source):
                break
        key = f"heldout-{case.edit_type}-{i:03d}"
        cases[key] = case
        held_keys.add(key)
    return cases, held_keys


def build_suite(out: str, seed: int = 0, size: int = 128, per_tag: int = 10, held_out_per_tag: int = 5,
                dense: int = 20, per_edit_type: int = 10, held_out_edits: int = 12, truth: bool = False) -> dict:
    """Write a ready suite into `out`: built beside it and renamed into place, so a failed or killed build leaves
    no folder that looks like a suite (`dreamlite evaluate` reuses any folder with a geneval.jsonl)."""
    from ..pipeline import check_size  # a suite's images must be a size the models sample at

    check_size(size, size)
    for name, count in (("per_tag", per_tag), ("held_out_per_tag", held_out_per_tag), ("dense", dense),
                        ("per_edit_type", per_edit_type), ("held_out_edits", held_out_edits)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise DreamLiteError(f"{name} must be an integer >= 0, got {count!r}")
    check_replaceable(out, "geneval.jsonl")
    with atomic_dir(out) as folder:
        os.makedirs(os.path.join(folder, "edits", "images"), exist_ok=True)
        records = build_records(seed, per_tag, held_out_per_tag)
        _write_jsonl(os.path.join(folder, "geneval.jsonl"), records)
        dense_items = build_dense(seed, dense, size)
        _write_jsonl(os.path.join(folder, "dense.jsonl"), [r for r, _ in dense_items])
        cases, held_keys = build_edits(seed, per_edit_type, held_out_edits, size)
        edits = {k: {"id": f"{k}.png", "prompt": c.instruction, "edit_type": c.edit_type} for k, c in cases.items()}
        for key, case in cases.items():
            Image.fromarray(render(case.source)).save(os.path.join(folder, "edits", "images", f"{key}.png"))
        with open(os.path.join(folder, "edits", "basic_edit.json"), "w") as f:
            json.dump(edits, f, indent=1)
        write_truth(cases, os.path.join(folder, "edits", "truth.json"), held_keys)
        if truth:
            rng = np.random.default_rng([seed, 4])
            for i, record in enumerate(records):
                _write_sample(os.path.join(folder, "truth", "geneval"), i, record, render(scene_for_record(rng, record, size)))
            for i, (record, scene) in enumerate(dense_items):
                _write_sample(os.path.join(folder, "truth", "dense"), i, record, render(scene))
            os.makedirs(os.path.join(folder, "truth", "edits"), exist_ok=True)
            for key, case in cases.items():
                Image.fromarray(render(case.target)).save(os.path.join(folder, "truth", "edits", f"{key}.png"))
    return {"geneval": len(records), "dense": len(dense_items), "edits": len(cases), "held_out_edits": len(held_keys)}


def _write_sample(out: str, index: int, record: dict, image: np.ndarray):
    os.makedirs(os.path.dirname(sample_path(out, index, 0)), exist_ok=True)
    with open(os.path.join(sample_folder(out, index), "metadata.jsonl"), "w") as f:
        f.write(json.dumps(record) + "\n")
    Image.fromarray(image).save(sample_path(out, index, 0))


def _write_jsonl(path: str, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def edit_suite(folder: str, seed: int, size: int, per_edit_type: int) -> tuple[str, str, str]:
    """A validation suite of edits only (`per_edit_type` of each type, no held-out pairs), built on first use:
    (basic_edit.json, image root, truth.json) inside `folder`."""
    edits = os.path.join(folder, "edits")
    if not os.path.isfile(os.path.join(edits, "basic_edit.json")):
        build_suite(folder, seed=seed, size=size, per_tag=1, held_out_per_tag=0, dense=1,
                    per_edit_type=per_edit_type, held_out_edits=0)
    return tuple(os.path.join(edits, name) for name in ("basic_edit.json", "images", "truth.json"))
