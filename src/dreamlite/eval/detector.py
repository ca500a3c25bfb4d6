"""Recovering a scene from an image, exactly enough to score generations and edits without a neural judge.

Every pixel is read as a mix of the background and one palette colour (the colour whose line from the
background passes closest), so a blurred edge keeps its object's colour. Seeds are connected pixels of
one colour covering over half; each grows a few pixels to collect its blurred rim. Shape, size and centre
come from the coverage mass and centroid (which blur preserves), inverted per candidate shape with the
renderer's own geometry, and the candidate whose rendered template (sharp or blurred) explains the pixels
best wins. A seed no template explains is split (touching objects of one colour). At 64 px objects are
only 9-19 px wide, so nothing rests on pixel-level features or on erosion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..world.render import _STAR_HEIGHT, _STAR_WIDTH, object_mask
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
        for s, e in zip(starts, ends, strict=True):
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


def _binomial(x: np.ndarray) -> np.ndarray:
    """3x3 binomial smoothing: averages noise about as well as a box filter but blurs edges less."""
    p = np.pad(x, ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    h, w = x.shape[:2]
    rows = (p[:, :w] + 2 * p[:, 1:w + 1] + p[:, 2:w + 2]) / 4
    return (rows[:h] + 2 * rows[1:h + 1] + rows[2:h + 2]) / 4


@functools.lru_cache(maxsize=256)
def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """n x n matrix of a 1-D Gaussian blur with zero padding (templates are zero outside their object)."""
    offsets = np.arange(n)[:, None] - np.arange(n)[None, :]
    k = np.exp(-0.5 * (offsets / sigma) ** 2)
    return k / np.exp(-0.5 * (np.arange(-n, n + 1) / sigma) ** 2).sum()


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur as two small matrix products (fast on the windows `_fit` uses)."""
    if sigma <= 0:
        return x
    return _blur_matrix(x.shape[0], sigma) @ x @ _blur_matrix(x.shape[1], sigma).T


TEMPLATE_SIGMAS = (0.0, 0.7, 1.0, 1.4)  # blurs a template may need (small VAEs and models blur by ~1 px)
SPLIT_ERROR = 0.2  # fit error per unit of coverage mass beyond which a seed may be touching objects (good: < 0.1)
GROW = 3  # px a seed grows to collect its blurred edge (~2 sigma of the strongest blur above)


@functools.lru_cache(maxsize=1)
def _calibration() -> dict:
    """Per shape, how the renderer's coverage mass and centroid follow from size and centre.

    sqrt(mass) = a*size + b and centroid = centre + (p*size + q) * (x, y) hold for every shape (polygons are
    rasterised slightly wide); two sizes at a few sub-pixel offsets fix a, b, p, q, so a measured mass and
    centroid invert exactly to each candidate shape's size and centre, whatever blur the image has.
    """
    out = {}
    for shape in load_spec().shapes:
        rows = []
        for size in (12.0, 30.0):
            for off in (0.0, 0.25, 0.5, 0.75):
                c = size / 2 + 2 + off
                m = object_mask(Obj(shape, "black", c, c, size), int(size + 6)).astype(np.float64)
                ys, xs = np.mgrid[: m.shape[0], : m.shape[1]] + 0.5
                mass = m.sum()
                rows.append((size, np.sqrt(mass), (m * xs).sum() / mass - c, (m * ys).sum() / mass - c))
        rows = np.array(rows)
        design = np.stack([rows[:, 0], np.ones(len(rows))], axis=1)
        (a, b), (px, qx), (py, qy) = (np.linalg.lstsq(design, rows[:, k], rcond=None)[0] for k in (1, 2, 3))
        out[shape] = (a, b, px, qx, py, qy)
    return out


def is_grayscale(image: np.ndarray) -> bool:
    """Almost no clearly coloured pixel (after smoothing away noise): the smallest object covers ~0.7%."""
    smooth = _box_blur(image.astype(np.float64))
    spread = smooth.max(axis=2) - smooth.min(axis=2)
    return float((spread > GRAY_SATURATION).mean()) < 0.002


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3), image[:, :2].reshape(-1, 3),
                           image[:, -2:].reshape(-1, 3)]).astype(np.float64)


def detect_background(image: np.ndarray, gray: bool = False) -> str:
    spec = load_spec()
    median = np.median(_border(image), axis=0)
    refs = {n: np.array(_luminance_rgb(c) if gray else c, dtype=np.float64) for n, c in spec.backgrounds.items()}
    return min(refs, key=lambda n: float(np.linalg.norm(median - refs[n])))


def _luminance_rgb(c):
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return (lum, lum, lum)


def _grow(labels: np.ndarray, steps: int) -> np.ndarray:
    """Labelled 3x3 dilation into unlabelled pixels only: each seed collects its own blurred rim."""
    h, w = labels.shape
    for _ in range(steps):
        p = np.pad(labels, 1)
        neighbours = np.max([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
        labels = np.where(labels == 0, neighbours, labels)
    return labels


def _fit(alpha: np.ndarray, own: np.ndarray, free: np.ndarray, off: tuple[int, int]):
    """Best (error, shape, cx, cy, size, sigma) explaining one object's coverage.

    Each candidate shape's size and centre follow from the coverage mass and centroid (both unchanged by
    blur), and its template, rendered by the renderer itself at that sub-pixel geometry and blurred by each
    of TEMPLATE_SIGMAS, is compared with the coverage over the window (other objects' pixels excluded).
    """
    mass = float((alpha * own).sum())
    if mass <= 1.0:
        return None
    ys, xs = np.mgrid[: alpha.shape[0], : alpha.shape[1]] + 0.5
    mx, my = float((alpha * own * xs).sum()) / mass, float((alpha * own * ys).sum()) / mass
    side = max(alpha.shape)
    best = None
    for shape, (a, b, px, qx, py, qy) in _calibration().items():
        size = (np.sqrt(mass) - b) / a
        if size <= 1:
            continue
        cx, cy = mx - px * size - qx, my - py * size - qy
        template = object_mask(Obj(shape, "black", cx, cy, size), side)[: alpha.shape[0], : alpha.shape[1]]
        for sigma in TEMPLATE_SIGMAS:
            err = float((((_gaussian(template, sigma) - alpha) * free) ** 2).sum())
            if best is None or err < best[0]:
                best = (err, shape, cx + off[0], cy + off[1], size, sigma)
    return best


def _grey_seeds(dev: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Pixels over half as far from the background as their connected object's most extreme pixels: the
    grey-image counterpart of the colour seeds' over-half coverage, which splits blurred, touching objects."""
    comp, n = components(fg)
    strong = np.zeros_like(fg)
    for k in range(1, n + 1):
        part = comp == k
        strong |= part & (dev > 0.5 * np.quantile(dev[part], 0.9))
    return strong


def _fit_grey(window, own, free, core, dirs, off):
    """Grey image: colours differ only in grey level (some by 3 levels). A flat interior gives the level
    exactly; otherwise (blur lowers contrast, noise hides it) the level of the object's most extreme pixels
    only bounds its colour, so the candidates at least that far from the background are each fitted and the
    one whose template explains the pixels best (in grey levels) wins."""
    if not core.any():
        return None, 0
    dd = (dirs ** 2).sum(axis=1)
    lum = window[core, 0]  # grey: all channels equal
    top = lum[np.abs(lum) >= np.quantile(np.abs(lum), 0.7)]
    if top.std() < 2.0:  # a clean interior
        c = int(np.argmin(np.abs(dirs[:, 0] - np.median(top))))
        return _fit((window @ dirs[c]) / dd[c], own, free, off), c
    extent = np.quantile(lum[:, None] * np.sign(dirs[:, 0]), 0.9, axis=0)  # per candidate, along its line
    reach = np.abs(dirs[:, 0])
    order = [c for c in np.argsort(np.abs(reach - extent)) if reach[c] >= 0.8 * extent[c]]
    best, best_c = None, 0
    for c in order or [int(np.argmin(np.abs(reach - extent)))]:
        fit = _fit((window @ dirs[c]) / dd[c], own, free, off)
        if fit is not None and (best is None or fit[0] * dd[c] < best[0] * dd[best_c]):
            best, best_c = fit, int(c)
    return best, best_c


def _split(seed, share, own, alpha, free, off, error, min_seed):
    """Objects of one colour that blur joined (the spec's gap is only 1.3 px at 64 px) give a seed no single
    template explains: the parts that stay apart at a higher coverage threshold, each grown back over the
    seed's region, are fitted separately and kept if together they explain the pixels much better."""
    for threshold in (0.65, 0.8, 0.9):
        comp, n = components(seed & (share > threshold))
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        big = [k for k in range(1, n + 1) if sizes[k] >= min_seed]
        if len(big) < 2:
            continue
        sub = np.zeros(seed.shape, dtype=np.int32)
        for i, k in enumerate(big, 1):
            sub[comp == k] = i
        while True:  # grow the parts over the seed's region
            grown = np.where(own, _grow(sub, 1), 0)
            if (grown == sub).all():
                break
            sub = grown
        parts = []
        for i in range(1, len(big) + 1):
            part = sub == i
            fit = _fit(alpha, part, free & (part | ~own), off)
            if fit is None:
                break
            parts.append((fit, part))
        if len(parts) == len(big) and sum(f[0] for f, _ in parts) < 0.5 * error:
            return parts
    return None


def _suppress_duplicates(found: list[Detection]) -> list[Detection]:
    """A stray fragment whose centre lies well inside a larger detection is part of it: keep the larger."""
    kept = []
    for d in sorted(found, key=lambda d: -d.area):
        if all(abs(d.cx - k.cx) > 0.25 * k.width or abs(d.cy - k.cy) > 0.25 * k.height for k in kept):
            kept.append(d)
    return kept


def detect(image: np.ndarray) -> tuple[Scene, list[Detection]]:
    """Scene (size, background, objects) and per-object detections from a uint8 HxWx3 image (square canvas).

    1. Each pixel (lightly smoothed) is explained as a mix of the background and one palette colour: the
       colour whose background-to-colour line passes closest (a blurred dark edge is a mix with black, not
       a grey-ish palette colour). 2. Seeds: connected pixels of one colour covering more than half.
    3. Each seed grows GROW px into unclaimed pixels to collect its blurred rim. 4. Shape, size and centre:
       `_fit`, on the coverage of the raw image (unsmoothed: smoothing would merge neighbours at 64 px).
    """
    spec = load_spec()
    image = np.asarray(image)[..., :3]
    gray = is_grayscale(image)
    background = detect_background(image, gray)
    forbidden = () if gray else spec.forbidden_on_background.get(background, ())
    names = [n for n in spec.colors if n not in forbidden]
    palette = np.array([_luminance_rgb(spec.colors[n]) if gray else spec.colors[n] for n in names], dtype=np.float64)
    bg_rgb = np.array(_luminance_rgb(spec.backgrounds[background]) if gray else spec.backgrounds[background])
    raw = image.astype(np.float64)
    if gray:
        raw = np.repeat((raw @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=2)
    # The background as the image holds it: uint8 clipping biases noisy white or black backgrounds.
    border = _border(raw)
    border = border[np.linalg.norm(border - bg_rgb, axis=1) < FOREGROUND_DISTANCE]
    if len(border):
        bg_rgb = border.mean(axis=0)
    smooth = _binomial(raw) - bg_rgb
    size = image.shape[1]
    threshold = FOREGROUND_DISTANCE * (0.4 if gray else 1.0)
    fg = np.einsum("ijc,ijc->ij", smooth, smooth) > threshold ** 2
    dirs = palette - bg_rgb  # K x 3
    dd = (dirs ** 2).sum(axis=1)
    label = np.zeros(fg.shape, dtype=np.int64)
    if gray:  # grey levels of different colours lie on one line: seeds by each object's own contrast
        seeds = [(None, _grey_seeds(np.abs(smooth[..., 0]), fg))]
    else:
        px = smooth[fg]  # only foreground pixels need a colour
        proj = px @ dirs.T
        share = np.clip(proj / dd, 0.0, 1.0)
        resid = (px ** 2).sum(axis=1)[:, None] - 2 * share * proj + share ** 2 * dd
        best = np.argmin(resid, axis=1)
        label[fg] = best
        strong = np.zeros_like(fg)
        strong[fg] = share[np.arange(len(best)), best] > 0.5
        seeds = [(k, strong & (label == k)) for k in np.unique(best)]
    smallest = min(_calibration()[s][0] for s in spec.shapes) ** 2 * (spec.object_size_fraction[0] * size) ** 2
    labels = np.zeros(fg.shape, dtype=np.int32)
    count, colour_of = 0, [0]
    for colour, mask in seeds:
        comp, n = components(mask)
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        for k in np.nonzero(sizes[1:] >= 0.2 * smallest)[0] + 1:
            count += 1
            labels[comp == k] = count
            colour_of.append(colour)
    seed_labels, labels = labels, _grow(labels, GROW)
    found = []
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs]
    for k in range(1, count + 1):
        sel = which == k
        y0, y1 = max(0, ys[sel].min() - 1), min(size, ys[sel].max() + 2)
        x0, x1 = max(0, xs[sel].min() - 1), min(size, xs[sel].max() + 2)
        own = labels[y0:y1, x0:x1] == k
        window = raw[y0:y1, x0:x1] - bg_rgb
        core = own & fg[y0:y1, x0:x1]
        free = (labels[y0:y1, x0:x1] == 0) | own
        if gray:
            fit, c = _fit_grey(window, own, free, core, dirs, (x0, y0))
        else:  # the seed's colour: its pixels cover over half, unlike the rim whose colour noise decides
            c = int(colour_of[k])
            fit = _fit((window @ dirs[c]) / dd[c], own, free, (x0, y0))
        if fit is None:
            continue
        alpha = (window @ dirs[c]) / dd[c]
        parts = [(fit, own)]
        if fit[0] > SPLIT_ERROR * float((alpha * own).sum()):
            share = (smooth[y0:y1, x0:x1] @ dirs[c]) / dd[c]
            parts = _split(seed_labels[y0:y1, x0:x1] == k, share, own, alpha, free, (x0, y0), fit[0],
                           0.1 * smallest) or parts
        for (_, shape, cx, cy, width, _), part in parts:
            if float((alpha * part).sum()) < 0.5 * smallest:
                continue
            height = width * (_STAR_HEIGHT / _STAR_WIDTH if shape == "star" else 1.0)
            found.append(Detection(shape, names[c], cx, cy, width, height, int(part.sum())))
    found = _suppress_duplicates(found)
    found.sort(key=lambda d: (d.cy, d.cx))
    return Scene(size, background, tuple(d.to_obj() for d in found), grayscale=gray), found
