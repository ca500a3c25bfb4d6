import numpy as np
import pytest

from dreamlite.world.captions import (
    GENEVAL_TAGS,
    dense_prompt,
    geneval_record,
    scene_for_record,
    training_caption,
)
from dreamlite.world.edits import EDIT_TYPES, in_side, sample_edit
from dreamlite.world.geometry import relations_between
from dreamlite.world.render import render, shape_coverage
from dreamlite.world.scene import Scene, sample_scene
from dreamlite.world.spec import load_spec

SPEC = load_spec()


def _check_rules(scene: Scene, allow_held_out=False):
    lo, hi = SPEC.object_size_fraction
    gap = SPEC.min_gap_fraction * scene.size
    for i, o in enumerate(scene.objects):
        x0, y0, x1, y1 = o.box
        assert 0 <= x0 and 0 <= y0 and x1 <= scene.size and y1 <= scene.size
        assert lo * scene.size - 1e-6 <= o.size <= hi * scene.size + 1e-6
        assert o.color not in SPEC.forbidden_on_background[scene.background]
        assert allow_held_out or (o.color, o.shape) not in SPEC.held_out
        for p in scene.objects[i + 1:]:
            a, b = o.box, p.box
            assert a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


@pytest.mark.parametrize("size", [64, 128, 256])
def test_sampled_scenes_obey_the_rules(size):
    rng = np.random.default_rng(size)
    for _ in range(300):
        scene = sample_scene(rng, size)
        assert 1 <= len(scene.objects) <= SPEC.max_objects
        _check_rules(scene)


def test_same_seed_same_scene_and_render():
    a = sample_scene(np.random.default_rng([7, 3]), 128)
    b = sample_scene(np.random.default_rng([7, 3]), 128)
    assert a == b and np.array_equal(render(a), render(b))


def test_shapes_are_drawn_in_exact_palette_colours():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scene = sample_scene(rng, 128)
        image = render(scene)
        for o in scene.objects:
            assert tuple(image[int(o.cy), int(o.cx)]) == SPEC.colors[o.color]  # every shape covers its centre
        assert tuple(image[0, 0]) in {SPEC.backgrounds[scene.background]} | set(SPEC.colors.values())


def test_shape_coverage_marks_each_object_in_its_shapes_channel():
    rng = np.random.default_rng(1)
    for _ in range(20):
        scene = sample_scene(rng, 64)
        coverage = shape_coverage(scene)
        assert coverage.shape == (len(SPEC.shapes), 64, 64) and coverage.min() >= 0 and coverage.max() <= 1
        drawn = (render(scene) != render(scene.with_objects(()))).any(axis=2)  # pixels some object touches
        assert np.array_equal(coverage.sum(axis=0) > 0, drawn)
        for o in scene.objects:  # its centre is fully inside it, in its own shape's channel only
            centre = coverage[:, int(o.cy), int(o.cx)]
            assert centre[SPEC.shapes.index(o.shape)] == 1 and centre.sum() == 1


def test_edits_yield_spec_correct_targets():
    rng = np.random.default_rng(1)
    for edit_type in EDIT_TYPES:
        made = 0
        for _ in range(200):
            case = sample_edit(rng, 128, edit_type)
            if case is None:
                continue
            made += 1
            src, tgt = case.source, case.target
            _check_rules(src)
            if edit_type != "style":
                _check_rules(tgt)
            if edit_type == "add":
                assert len(tgt.objects) == len(src.objects) + 1 and tgt.objects[:-1] == src.objects
            elif edit_type == "remove":
                assert len(tgt.objects) == len(src.objects) - 1
            elif edit_type in ("replace", "adjust"):
                changed = [(a, b) for a, b in zip(src.objects, tgt.objects) if a != b]
                assert len(changed) == 1 and (changed[0][0].cx, changed[0][0].size) == (changed[0][1].cx, changed[0][1].size)
                assert edit_type == "replace" or changed[0][0].shape == changed[0][1].shape
            elif edit_type == "background":
                assert tgt.objects == src.objects and tgt.background != src.background
            elif edit_type == "action":
                (i, side), = case.moved
                assert in_side(tgt.objects[i].cx, tgt.objects[i].cy, side, 128) and tgt.objects[i].size == src.objects[i].size
            elif edit_type == "style":
                image = render(tgt)
                assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
            elif edit_type == "extract":
                (o,) = tgt.objects
                assert tgt.background == "white" and (o.cx, o.cy) == (64, 64)
            if edit_type != "compose":
                assert case.instruction.split()[0] in SPEC.edit_types[edit_type]
        assert made >= 20, edit_type


def test_held_out_pairs_never_appear_in_training_streams():
    from dreamlite.data.shapes import shapes_sample

    for i in range(400):
        sample = shapes_sample(0, i, "joint", 64)
        scene = Scene.from_dict(sample["scene"])
        assert not any((o.color, o.shape) in SPEC.held_out for o in scene.objects)
        assert not any(f"{c} {s}" in sample["text"] for c, s in SPEC.held_out)


def test_geneval_records_and_ground_truth_scenes():
    rng = np.random.default_rng(2)
    for tag in GENEVAL_TAGS:
        for _ in range(20):
            record = geneval_record(rng, tag)
            assert set(record) >= {"tag", "prompt", "include"} and record["tag"] == tag
            scene = scene_for_record(rng, record, 128)
            for req in record["include"]:
                matching = [o for o in scene.objects if o.shape == req["class"] and req.get("color", o.color) == o.color]
                assert len(matching) >= req["count"]
                if "position" in req:
                    rel, j = req["position"]
                    anchor = [o for o in scene.objects if o.shape == record["include"][j]["class"]][0]
                    assert rel in relations_between(matching[0], anchor)
    assert geneval_record(np.random.default_rng(0), "colors")["prompt"].count(" a ") + 1 >= 1


def test_articles_follow_english():
    rng = np.random.default_rng(3)
    prompts = [geneval_record(rng, "colors")["prompt"] for _ in range(200)]
    assert any(p.startswith("a photo of an orange") for p in prompts)
    assert not any(" a orange" in p for p in prompts)


def test_dense_and_training_captions():
    rng = np.random.default_rng(4)
    record, scene = dense_prompt(rng, 128)
    assert 3 <= len(scene.objects) <= 5 and record["propositions"]
    assert any(p["type"] == "relation" for p in record["propositions"]) or len(scene.objects) < 2
    caption = training_caption(rng, scene)
    assert isinstance(caption, str) and caption
