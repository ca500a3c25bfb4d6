"""Prompts and captions: GenEval's six tags (records + a scene that satisfies them), dense prompts with
their atomic propositions, and richer training captions for arbitrary scenes."""

from __future__ import annotations

from .geometry import relations_between
from .scene import Obj, Scene, place_object, random_background, random_kind, sample_scene
from .spec import load_spec, with_article

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
CATEGORIES = (*GENEVAL_TAGS, "dense", "caption")  # the world's prompt families, as training categories
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def geneval_record(rng, tag: str, allow_held_out: bool = False, held_out_only: bool = False) -> dict:
    """One prompt in GenEval's `evaluation_metadata.jsonl` schema, with shape names as classes."""
    spec = load_spec()
    t = spec.generation_templates[tag]
    bg = spec.default_background

    def kind(exclude=()):
        if held_out_only:
            return _pick(rng, sorted(spec.held_out - set(exclude)))
        return random_kind(rng, bg, allow_held_out, exclude)

    if tag == "single_object":
        shape = _pick(rng, spec.shapes)
        return {"tag": tag, "include": [{"class": shape, "count": 1}], "prompt": t.format(shape=shape)}
    if tag == "two_object":
        a, b = rng.choice(len(spec.shapes), 2, replace=False)
        a, b = spec.shapes[a], spec.shapes[b]
        return {"tag": tag, "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
                "prompt": t.format(shape_a=a, shape_b=b)}
    if tag == "counting":
        word = _pick(rng, list(spec.counts))
        n, shape = spec.counts[word], _pick(rng, spec.shapes)
        return {"tag": tag, "include": [{"class": shape, "count": n}], "exclude": [{"class": shape, "count": n + 1}],
                "prompt": t.format(count_word=word, shape_plural=spec.plurals[shape])}
    if tag == "colors":
        color, shape = kind()
        return {"tag": tag, "include": [{"class": shape, "count": 1, "color": color}],
                "prompt": t.format(color=color, shape=shape).replace(" a " + color, " " + with_article(color))}
    if tag == "position":
        a, b = rng.choice(len(spec.shapes), 2, replace=False)
        a, b = spec.shapes[a], spec.shapes[b]
        rel = _pick(rng, spec.relations)
        return {"tag": tag, "include": [{"class": a, "count": 1}, {"class": b, "count": 1, "position": [rel, 0]}],
                "prompt": t.format(shape_a=a, shape_b=b, relation=rel)}
    if tag == "color_attr":
        ca, sa = kind()
        cb, sb = kind(exclude=[(ca, sa)])
        while sb == sa:
            cb, sb = kind(exclude=[(ca, sa)])
        prompt = f"a photo of {with_article(ca)} {sa} and {with_article(cb)} {sb}"
        return {"tag": tag, "include": [{"class": sa, "count": 1, "color": ca}, {"class": sb, "count": 1, "color": cb}],
                "prompt": prompt}
    raise ValueError(f"unknown GenEval tag {tag!r}")


def scene_for_record(rng, record: dict, size: int, allow_held_out: bool = True, tries: int = 100) -> Scene:
    """A scene that satisfies a GenEval record exactly (ground truth for scoring, or a training target)."""
    spec = load_spec()
    for _ in range(tries):
        scene = Scene(size, spec.default_background)
        ok = True
        for req in record["include"]:
            for _ in range(req["count"]):
                color = req.get("color") or random_kind(rng, scene.background, allow_held_out)[0]
                while not req.get("color") and not spec.allowed(color, req["class"], scene.background, allow_held_out):
                    color = random_kind(rng, scene.background, allow_held_out)[0]
                if "position" in req:
                    anchor = scene.objects[0]
                    obj = _place_related(rng, scene, anchor, req["position"][0], req["class"], color)
                else:
                    obj = place_object(rng, scene, req["class"], color)
                if obj is None:
                    ok = False
                    break
                scene = scene.with_objects(scene.objects + (obj,))
            if not ok:
                break
        if ok:
            return scene
    raise RuntimeError(f"could not build a scene for {record['prompt']!r}")


def _place_related(rng, scene, anchor: Obj, relation: str, shape: str, color: str):
    """Place a new object whose relation to `anchor` holds clearly under GenEval's rule."""
    for _ in range(100):
        obj = place_object(rng, scene, shape, color, tries=1)
        if obj is not None and relation in relations_between(obj, anchor) and len(relations_between(obj, anchor)) == 1:
            return obj
    return None


# ---------------------------------------------------------------------------------------------- dense
def dense_prompt(rng, size: int, allow_held_out: bool = False) -> tuple[dict, Scene]:
    """3-5 distinct coloured objects, pairwise relations and maybe a background, as one sentence + propositions."""
    from .scene import sample_scene

    n = int(rng.integers(3, 6))
    bg = random_background(rng)
    scene = sample_scene(rng, size, n_objects=n, allow_held_out=allow_held_out, background=bg, unique=True)
    objs = list(scene.objects)
    props = [{"type": "object", "shape": o.shape} for o in objs]
    props += [{"type": "color", "shape": o.shape, "color": o.color} for o in objs]
    clauses = []
    for i in range(1, n):  # each object related to an earlier one: a connected description
        j = int(rng.integers(i))
        rels = sorted(relations_between(objs[i], objs[j]))
        if not rels:
            continue
        rel = _pick(rng, rels)
        props.append({"type": "relation", "a": [objs[i].color, objs[i].shape], "b": [objs[j].color, objs[j].shape],
                      "relation": rel})
        clauses.append(f"the {objs[i].name} is {rel} the {objs[j].name}")
    listing = ", ".join(with_article(o.name) for o in objs[:-1]) + " and " + with_article(objs[-1].name)
    text = f"{listing}"
    if bg != spec_default():
        text += f" on a {bg} background"
        props.append({"type": "background", "background": bg})
    if clauses:
        text += "; " + ", ".join(clauses)
    return {"prompt": text, "propositions": props}, scene


def spec_default() -> str:
    return load_spec().default_background


# ---------------------------------------------------------------------------------------------- training
def training_caption(rng, scene: Scene) -> str:
    """Varied captions for training: GenEval-like phrasings, counts, colours, relations and backgrounds."""
    spec = load_spec()
    objs = scene.objects
    style = rng.random()
    if len(objs) > 1 and len({(o.color, o.shape) for o in objs}) == 1 and style < 0.5:
        body = f"{_NUMBER_WORDS[len(objs)]} {objs[0].color} {spec.plurals[objs[0].shape]}"
    elif len(objs) == 2 and style < 0.5:
        rels = sorted(relations_between(objs[1], objs[0]))
        body = (f"{with_article(objs[1].name)} {_pick(rng, rels)} {with_article(objs[0].name)}" if rels
                else f"{with_article(objs[0].name)} and {with_article(objs[1].name)}")
    else:
        names = [with_article(o.name) for o in objs]
        body = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    prefix = "a photo of " if rng.random() < 0.7 else ""
    text = prefix + body
    if scene.background != spec.default_background or rng.random() < 0.3:
        text += f" on a {scene.background} background"
    return text


def generation_example(rng, category: str, size: int) -> tuple[str, Scene]:
    """(prompt, scene) of one category: GenEval tags use their templates with a scene that satisfies them,
    `dense` a dense prompt, `caption` a free caption of a random scene. Held-out pairs never appear."""
    if category == "dense":
        record, scene = dense_prompt(rng, size)
        return record["prompt"], scene
    if category == "caption":
        scene = sample_scene(rng, size)
        return training_caption(rng, scene), scene
    while True:
        record = geneval_record(rng, category)
        try:
            return record["prompt"], scene_for_record(rng, record, size, allow_held_out=False)
        except RuntimeError:  # no room for this record at this size: draw another record
            continue
