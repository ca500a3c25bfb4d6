"""Detector accuracy on random scenes (a smaller sample than benchmarks/world_and_eval.py, same thresholds)."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dreamlite.eval.detector import detect
from dreamlite.world.render import render
from dreamlite.world.scene import Obj, Scene, sample_scene
from dreamlite.world.spec import load_spec


def matches(scene, detected, tol=2.0) -> bool:
    if len(scene.objects) != len(detected.objects) or scene.background != detected.background:
        return False
    remaining = list(detected.objects)
    for o in scene.objects:
        hit = next((d for d in remaining if d.shape == o.shape and d.color == o.color
                    and abs(d.cx - o.cx) <= tol and abs(d.cy - o.cy) <= tol), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def degrade(image, rng):
    blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(1))).astype(np.float64)
    return np.clip(np.round(blurred + rng.normal(0, 8, image.shape)), 0, 255).astype(np.uint8)


def accuracy(size, n, degraded, seed=0):
    rng = np.random.default_rng([seed, size])
    good = 0
    for _ in range(n):
        scene = sample_scene(rng, size, allow_held_out=True)
        image = render(scene)
        good += matches(scene, detect(degrade(image, rng) if degraded else image)[0])
    return good / n


@pytest.mark.parametrize("size", [64, 128, 256])
def test_clean_scenes_are_recovered_exactly(size):
    assert accuracy(size, {64: 120, 128: 120, 256: 60}[size], degraded=False) >= 0.995


@pytest.mark.parametrize("size", [64, 128, 256])
def test_blur_and_noise_are_tolerated(size):
    assert accuracy(size, {64: 120, 128: 100, 256: 50}[size], degraded=True) >= 0.97


@pytest.mark.parametrize("shapes", [("circle", "cross"), ("square", "square"), ("star", "triangle")])
@pytest.mark.parametrize("color, background", [("brown", "white"), ("pink", "sky"), ("white", "gray")])
def test_touching_objects_of_one_colour_are_split_at_64px(shapes, color, background):
    """The spec's minimum gap is 1.3 px at 64 px: blur joins such neighbours into one component."""
    gap = load_spec().min_gap_fraction * 64
    scene = Scene(64, background, (Obj(shapes[0], color, 20.3, 30.6, 14.0), Obj(shapes[1], color, 34.3 + gap, 30.6, 14.0)))
    image = render(scene)
    assert matches(scene, detect(image)[0])
    assert matches(scene, detect(degrade(image, np.random.default_rng(0)))[0])


def test_grayscale_images_are_recognised():
    from dreamlite.world.render import to_grayscale

    scene = sample_scene(np.random.default_rng(5), 128, n_objects=3, background="white")
    detected, _ = detect(to_grayscale(render(scene)))
    assert detected.grayscale and len(detected.objects) == 3
