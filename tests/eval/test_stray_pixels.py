"""benchmarks/stray_pixels.py: a clean rendered canvas has no stray pixels; specks away from every object do."""

import os

import numpy as np
import pytest


@pytest.fixture(scope="module")
def stray_pixels(benchmark):
    return benchmark("stray_pixels")


def test_specks_outside_the_objects_count_and_the_objects_do_not(stray_pixels):
    from dreamlite.world.render import render
    from dreamlite.world.scene import Obj, Scene

    scene = Scene(64, "white", (Obj("circle", "red", 16, 16, 14), Obj("square", "blue", 44, 40, 16)))
    clean = render(scene)
    share, objects, passed = stray_pixels.stray_share(clean)
    assert share == 0 and objects == 2 and not passed  # no record: nothing to pass
    speckled = clean.copy()
    speckled[56:58, 4:10] = (40, 170, 60)  # 12 green pixels far from both objects: too small to be an object
    share, _, _ = stray_pixels.stray_share(speckled)
    assert np.isclose(share, 12 / 64**2)


def test_a_folder_counts_objects_beyond_those_the_prompt_names(tmp_path, stray_pixels):
    """Two objects drawn for "a photo of a circle" pass GenEval's at-least rule; the summary shows the extra."""
    import json

    from PIL import Image

    from dreamlite.eval.layout import sample_folder, sample_path
    from dreamlite.world.render import render
    from dreamlite.world.scene import Obj, Scene

    record = {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"}
    one = Scene(64, "white", (Obj("circle", "red", 16, 16, 14),))
    two = Scene(64, "white", (Obj("circle", "red", 16, 16, 14), Obj("square", "blue", 44, 40, 16)))
    os.makedirs(os.path.dirname(sample_path(str(tmp_path), 0, 0)))
    with open(os.path.join(sample_folder(str(tmp_path), 0), "metadata.jsonl"), "w") as f:
        f.write(json.dumps(record) + "\n")
    for i, scene in enumerate((one, two)):
        Image.fromarray(render(scene)).save(sample_path(str(tmp_path), 0, i))
    summary = stray_pixels.summarise(str(tmp_path))
    assert summary["single_object"] == summary["all"]
    assert summary["all"]["more objects than named"] == 0.5 and summary["all"]["objects per image"] == 1.5
    assert summary["all"]["speckled images"] == 0 and summary["all"]["empty canvases"] == 0 and summary["all"]["passes with nothing extra"] == 0.5
