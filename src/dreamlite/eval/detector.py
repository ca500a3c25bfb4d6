"""Recovering a scene from an image, exactly enough to score generations and edits without a neural judge.

Palette segmentation (distance to the background, nearest palette colour), connected components per
colour, and shape classification by scale-free geometry (fill of the bounding box, vertical balance,
corner and centre occupancy) against prototypes measured on the renderer itself. A 3x3 smoothing and
an erosion test make it tolerant to the blur and colour noise that small VAEs and models produce.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..world.render import object_mask, render
from ..world.scene import Obj, Scene
from ..world.spec import load_spec

FOREGROUND_DISTANCE = 35.0  # RGB distance from the background that makes a pixel foreground
GRAY_SATURATION = 30.0  # channel spread that makes a (smoothed) pixel coloured


@dataclass(frozen=True)
class Detection:
    shape: str
    color: str
    cx: float
    cy: float
    width: float
    height: float
    area: int

    @property
    def size(self) -> float:
        return max(self.width, self.height)

    def to_obj(self) -> Obj:
        return Obj(self.shape, self.color, self.cx, self.cy, self.size)


def _box_blur(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    h, w = x.shape[:2]
    return sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0


def _neighbourhood(mask: np.ndarray, combine, fill: bool) -> np.ndarray:
    """3x3 erosion (combine=AND) or dilation (combine=OR) of a boolean mask."""
    p = np.pad(mask, 1, mode="constant")
    h, w = mask.shape
    out = np.full_like(mask, fill)
    for dy in range(3):
        for dx in range(3):
            out = combine(out, p[dy:dy + h, dx:dx + w])
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    return _neighbourhood(mask, np.logical_and, True)


def _dilate(mask: np.ndarray) -> np.ndarray:
    return _neighbourhood(mask, np.logical_or, False)


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected component labels (1..n), by union-find over runs; pure numpy + Python loops over runs."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    parent = [0]

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    prev_runs: list[tuple[int, int, int]] = []
    for y in range(h):
        row = mask[y]
        if not row.any():
            prev_runs = []
            continue
        d = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
        runs = []
        for s, e in zip(starts, ends):
            label = 0
            for ps, pe, pl in prev_runs:
                if ps <= e and pe >= s:  # overlaps including diagonals: [s-1, e] vs [ps, pe-1]
                    if label == 0:
                        label = find(pl)
                    else:
                        a, b = find(label), find(pl)
                        if a != b:
                            parent[max(a, b)] = min(a, b)
                            label = min(a, b)
            if label == 0:
                parent.append(len(parent))
                label = len(parent) - 1
            labels[y, s:e] = label
            runs.append((s, e, label))
        prev_runs = runs
    roots = np.array([find(i) for i in range(len(parent))], dtype=np.int32)
    uniq, remap = np.unique(roots, return_inverse=True)
    return remap.astype(np.int32)[labels], len(uniq) - 1


def shape_features(mask: np.ndarray) -> np.ndarray:
    """Scale-free geometry of one object's pixels (cropped to its bounding box)."""
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float64)
    h, w = crop.shape
    area = crop.sum()
    top = crop[: h // 2].sum() / max(crop[(h + 1) // 2:].sum(), 1)
    cy, cx = max(1, round(h / 6)), max(1, round(w / 6))
    corners = np.mean([crop[:cy, :cx].mean(), crop[:cy, -cx:].mean(), crop[-cy:, :cx].mean(), crop[-cy:, -cx:].mean()])
    top_corners = np.mean([crop[:cy, :cx].mean(), crop[:cy, -cx:].mean()])
    middle = crop[h // 3: h - h // 3, w // 3: w - w // 3].mean()
    top_middle = crop[: max(1, h // 5), w // 3: w - w // 3].mean()
    return np.array([area / (h * w), min(top, 3.0), corners, top_corners, middle, top_middle, h / w])


@functools.lru_cache(maxsize=1)
def _prototypes():
    """Feature vectors of every shape rendered clean and blurred at several sizes (nearest one wins)."""
    from PIL import Image, ImageFilter

    rows, labels = [], []
    for size in (9, 12, 16, 24, 40):
        for s in load_spec().shapes:
            canvas = int(size * 2)
            image = render(Scene(canvas, "white", (Obj(s, "black", canvas / 2, canvas / 2, size),)))
            for blur in (0, 0.7, 1.0):
                im = image if blur == 0 else np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(blur)))
                rows.append(shape_features(im[..., 0] < 128))
                labels.append(s)
    rows = np.stack(rows)
    return rows, labels, rows.std(axis=0) + 1e-3


def classify_shape(mask: np.ndarray) -> str:
    rows, labels, scale = _prototypes()
    f = shape_features(mask)
    return labels[int(np.argmin((((rows - f) / scale) ** 2).sum(axis=1)))]


def coverage(raw: np.ndarray, bg: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per-pixel share of `colour` over `bg` (projection on the line between them), in [0, 1]."""
    d = colour - bg
    return np.clip(((raw - bg) @ d) / max(float(d @ d), 1e-6), 0.0, 1.0)


def match_shape(alpha: np.ndarray, cx: float, cy: float, width: float, near: np.ndarray) -> str:
    """The shape whose exact render at the measured centre and width best explains the coverage.

    Every shape's width equals its size and its bounding box is centred on its centre, so one measured box
    gives each candidate's exact geometry; template matching is robust where pixel-level features are not
    (objects only ~9 px wide).
    """
    half = int(np.ceil(width * 0.75)) + 2
    h, w = alpha.shape
    x0, y0 = max(0, int(cx) - half), max(0, int(cy) - half)
    x1, y1 = min(w, int(cx) + half), min(h, int(cy) + half)
    window = alpha[y0:y1, x0:x1] * near[y0:y1, x0:x1]
    side = max(x1 - x0, y1 - y0)
    best, best_err = None, np.inf
    for shape in load_spec().shapes:
        sharp = object_mask(Obj(shape, "black", cx - x0, cy - y0, width), side)
        for template in (sharp, _gaussian(sharp, 1.0)):  # the image may be blurred (small VAEs blur)
            err = float(np.abs(template[: y1 - y0, : x1 - x0] - window).sum())
            if err < best_err:
                best, best_err = shape, err
    return best


def _gaussian(mask: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    image = Image.fromarray(np.round(mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(image, dtype=np.float32) / 255.0


def is_grayscale(image: np.ndarray) -> bool:
    """Almost no clearly coloured pixel (after smoothing away noise): the smallest object covers ~0.7%."""
    smooth = _box_blur(image.astype(np.float64))
    spread = smooth.max(axis=2) - smooth.min(axis=2)
    return float((spread > GRAY_SATURATION).mean()) < 0.002


def detect_background(image: np.ndarray, gray: bool = False) -> str:
    spec = load_spec()
    border = np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3), image[:, :2].reshape(-1, 3),
                             image[:, -2:].reshape(-1, 3)]).astype(np.float64)
    median = np.median(border, axis=0)
    refs = {n: np.array(_luminance_rgb(c) if gray else c, dtype=np.float64) for n, c in spec.backgrounds.items()}
    return min(refs, key=lambda n: float(np.linalg.norm(median - refs[n])))


def _luminance_rgb(c):
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return (lum, lum, lum)


def _measure(pixels, raw, palette, names, bg_rgb, min_area) -> Detection | None:
    """Colour from the component's interior, geometry at the half-coverage boundary, shape by templates."""
    if pixels.sum() < min_area:
        return None
    core = _erode(_erode(pixels))  # away from blurred, colour-mixed edges
    if core.sum() < 2:
        core = _erode(pixels)
        if core.sum() < 2:
            return None
    c = int(np.argmin(np.linalg.norm(palette - raw[core].mean(axis=0), axis=1)))
    # Closer to the object colour than to the background, on the raw image (smoothing fills a star's notches).
    near = _dilate(_dilate(pixels))
    region = near & (np.linalg.norm(raw - palette[c], axis=2) < np.linalg.norm(raw - bg_rgb, axis=2))
    if not region.any():
        return None
    ys, xs = np.nonzero(region)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    cx, cy, width = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
    shape = match_shape(coverage(raw, bg_rgb, palette[c]), cx, cy, width, near)
    return Detection(shape, names[c], cx, cy, width, y1 - y0, int(pixels.sum()))


def _suppress_duplicates(found: list[Detection]) -> list[Detection]:
    """Blurred edges can form a second, differently coloured component around an object: keep the larger."""
    kept = []
    for d in sorted(found, key=lambda d: -d.area):
        if all(abs(d.cx - k.cx) > 0.25 * k.width or abs(d.cy - k.cy) > 0.25 * k.height for k in kept):
            kept.append(d)
    return kept


def detect(image: np.ndarray) -> Scene:
    """Scene (size, background, objects) recovered from a uint8 HxWx3 image (square canvases assumed)."""
    spec = load_spec()
    image = np.asarray(image)[..., :3]
    gray = is_grayscale(image)
    background = detect_background(image, gray)
    names = list(spec.colors)
    palette = np.array([_luminance_rgb(spec.colors[n]) if gray else spec.colors[n] for n in names], dtype=np.float64)
    bg_rgb = np.array(_luminance_rgb(spec.backgrounds[background]) if gray else spec.backgrounds[background], dtype=np.float64)
    raw = image.astype(np.float64)
    if gray:
        raw = np.repeat((raw @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=2)
    smooth = _box_blur(raw)
    threshold = FOREGROUND_DISTANCE * (0.4 if gray else 1.0)
    fg = np.linalg.norm(smooth - bg_rgb, axis=2) > threshold
    label = np.argmin(((smooth[..., None, :] - palette[None, None]) ** 2).sum(-1), axis=2)
    size = image.shape[1]
    min_area = 0.12 * (spec.object_size_fraction[0] * size) ** 2
    groups = [fg] if gray else [fg & (label == c) for c in np.unique(label[fg])]
    found = []
    for group in groups:
        comp, n = components(group)
        for k in range(1, n + 1):
            detection = _measure(comp == k, raw, palette, names, bg_rgb, min_area)
            if detection is not None:
                found.append(detection)
    found = _suppress_duplicates(found)
    found.sort(key=lambda d: (d.cy, d.cx))
    return Scene(size, background, tuple(d.to_obj() for d in found), grayscale=gray), found
