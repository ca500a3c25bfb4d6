"""benchmarks/stray_pixels.py: a clean rendered canvas has no stray pixels; specks away from every object do."""

import importlib.util
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("stray_pixels", os.path.join(ROOT, "benchmarks", "stray_pixels.py"))
stray_pixels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stray_pixels)


def test_specks_outside_the_objects_count_and_the_objects_do_not():
    from dreamlite.world.render import render
    from dreamlite.world.scene import Obj, Scene

    scene = Scene(64, "white", (Obj("circle", "red", 16, 16, 14), Obj("square", "blue", 44, 40, 16)))
    clean = render(scene)
    share, objects = stray_pixels.stray_share(clean)
    assert share == 0 and objects == 2
    speckled = clean.copy()
    speckled[56:58, 4:10] = (40, 170, 60)  # 12 green pixels far from both objects: too small to be an object
    share, _ = stray_pixels.stray_share(speckled)
    assert np.isclose(share, 12 / 64**2)
