"""Rendering scenes: flat shapes in their exact palette RGB, antialiased by 4x supersampling."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .scene import Obj, Scene
from .spec import load_spec

SUPERSAMPLE = 4
STAR_INNER = 0.45
_STAR_WIDTH = 2 * math.sin(math.radians(72))  # star width / outer radius
_STAR_HEIGHT = 1 + math.cos(math.radians(36))  # star height / outer radius


def outline(obj: Obj, k: float = 1.0) -> tuple[str, list]:
    """('ellipse'|'polygon', points) in pixel coordinates scaled by k."""
    cx, cy, h = obj.cx * k, obj.cy * k, obj.size * k / 2
    if obj.shape == "circle":
        return "ellipse", [cx - h, cy - h, cx + h, cy + h]
    if obj.shape == "square":
        return "polygon", [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if obj.shape == "triangle":
        return "polygon", [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if obj.shape == "cross":
        t = h / 3  # arms one third of the side thick
        return "polygon", [(cx - t, cy - h), (cx + t, cy - h), (cx + t, cy - t), (cx + h, cy - t), (cx + h, cy + t),
                           (cx + t, cy + t), (cx + t, cy + h), (cx - t, cy + h), (cx - t, cy + t), (cx - h, cy + t),
                           (cx - h, cy - t), (cx - t, cy - t)]
    if obj.shape == "star":
        r = obj.size * k / _STAR_WIDTH  # width equals the size
        oy = cy - r * (_STAR_HEIGHT / 2 - 1)  # centre the bounding box (not the star's centre) on (cx, cy)
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * STAR_INNER
            angle = math.radians(-90 + 36 * i)
            points.append((cx + radius * math.cos(angle), oy + radius * math.sin(angle)))
        return "polygon", points
    raise ValueError(f"unknown shape {obj.shape!r}")


def _draw(draw: ImageDraw.ImageDraw, obj: Obj, fill, k: float):
    kind, points = outline(obj, k)
    # PIL fills pixel centres inside [x0, x1]; shift by half a pixel so coverage matches the geometry.
    if kind == "ellipse":
        x0, y0, x1, y1 = points
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=fill)
    else:
        draw.polygon([(x - 0.5, y - 0.5) for x, y in points], fill=fill)


def render(scene: Scene) -> np.ndarray:
    """uint8 [S, S, 3]."""
    spec = load_spec()
    big = scene.size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), spec.backgrounds[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        _draw(draw, obj, spec.colors[obj.color], SUPERSAMPLE)
    array = np.asarray(image.resize((scene.size, scene.size), Image.BOX))
    return to_grayscale(array) if scene.grayscale else array


def to_grayscale(array: np.ndarray) -> np.ndarray:
    """The style edit: every pixel becomes its luminance, as grey."""
    lum = array[..., 0] * 0.299 + array[..., 1] * 0.587 + array[..., 2] * 0.114
    return np.repeat(np.clip(np.round(lum), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def object_mask(obj: Obj, size: int) -> np.ndarray:
    """Coverage in [0, 1] of one object on an S x S canvas."""
    big = size * SUPERSAMPLE
    image = Image.new("L", (big, big), 0)
    _draw(ImageDraw.Draw(image), obj, 255, SUPERSAMPLE)
    return np.asarray(image.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def shape_coverage(scene: Scene) -> np.ndarray:
    """float32 [n_shapes, S, S]: per shape of the spec (in its order), how much of each pixel its objects cover.
    What a shape-aware VAE objective reads; colours and background play no part."""
    shapes = load_spec().shapes
    coverage = np.zeros((len(shapes), scene.size, scene.size), dtype=np.float32)
    for obj in scene.objects:
        coverage[shapes.index(obj.shape)] += object_mask(obj, scene.size)
    return np.minimum(coverage, 1.0)
