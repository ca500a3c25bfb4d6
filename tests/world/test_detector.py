"""Detector accuracy on random scenes (a smaller sample than benchmarks/world_and_eval.py, same thresholds)."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dreamlite.eval.detector import detect
from dreamlite.world.render import render
from dreamlite.world.scene import sample_scene


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


@pytest.mark.parametrize("size", [128, 256])
def test_clean_scenes_are_recovered_exactly(size):
    assert accuracy(size, 120 if size < 256 else 60, degraded=False) >= 0.995


@pytest.mark.parametrize("size", [128, 256])
def test_blur_and_noise_are_tolerated(size):
    assert accuracy(size, 100 if size < 256 else 50, degraded=True) >= 0.97


@pytest.mark.xfail(reason="open (issue 3): at 64 px, ~94% clean and ~50% degraded; objects 9 px wide merge or blur away",
                   strict=True)
@pytest.mark.parametrize("degraded", [False, True])
def test_64px(degraded):
    assert accuracy(64, 120, degraded=degraded) >= (0.97 if degraded else 0.995)


def test_grayscale_images_are_recognised():
    from dreamlite.world.render import to_grayscale

    scene = sample_scene(np.random.default_rng(5), 128, n_objects=3, background="white")
    detected, _ = detect(to_grayscale(render(scene)))
    assert detected.grayscale and len(detected.objects) == 3
