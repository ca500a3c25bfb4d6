"""Scene graphs: a canvas, a background and non-overlapping objects; sampling that obeys the world's rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .spec import load_spec


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    cx: float
    cy: float
    size: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        h = self.size / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    size: int
    background: str
    objects: tuple[Obj, ...] = field(default_factory=tuple)
    grayscale: bool = False  # the style edit's target: rendered as luminance

    def to_dict(self) -> dict:
        return {"size": self.size, "background": self.background, "grayscale": self.grayscale,
                "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(int(d["size"]), d["background"], tuple(Obj(**o) for o in d["objects"]), bool(d.get("grayscale", False)))

    def scale(self, new_size: int) -> Scene:
        k = new_size / self.size
        objects = tuple(replace(o, cx=o.cx * k, cy=o.cy * k, size=o.size * k) for o in self.objects)
        return replace(self, size=new_size, objects=objects)

    def with_objects(self, objects) -> Scene:
        return replace(self, objects=tuple(objects))

    def find(self, color: str, shape: str) -> list[int]:
        return [i for i, o in enumerate(self.objects) if o.color == color and o.shape == shape]


def boxes_clear(box, others, gap: float) -> bool:
    x0, y0, x1, y1 = box
    return all(x1 + gap <= b[0] or b[2] + gap <= x0 or y1 + gap <= b[1] or b[3] + gap <= y0 for b in others)


def fits(scene: Scene, obj: Obj, ignore: int | None = None) -> bool:
    """Inside the canvas and at least the minimum gap away from every other object."""
    x0, y0, x1, y1 = obj.box
    if x0 < 0 or y0 < 0 or x1 > scene.size or y1 > scene.size:
        return False
    others = [o.box for i, o in enumerate(scene.objects) if i != ignore]
    return boxes_clear(obj.box, others, load_spec().min_gap_fraction * scene.size)


def random_size(rng: np.random.Generator, canvas: int) -> float:
    lo, hi = load_spec().object_size_fraction
    return float(rng.uniform(lo, hi) * canvas)


def place_object(rng, scene: Scene, shape: str, color: str, size: float | None = None, region=None,
                 tries: int = 200) -> Obj | None:
    """A new object in free space (optionally with its centre inside `region` = (x0, y0, x1, y1))."""
    for _ in range(tries):
        s = size if size is not None else random_size(rng, scene.size)
        lo, hi = s / 2, scene.size - s / 2
        rx0, ry0, rx1, ry1 = region or (lo, lo, hi, hi)
        rx0, ry0, rx1, ry1 = max(rx0, lo), max(ry0, lo), min(rx1, hi), min(ry1, hi)
        if rx0 > rx1 or ry0 > ry1:
            continue
        obj = Obj(shape, color, float(rng.uniform(rx0, rx1)), float(rng.uniform(ry0, ry1)), s)
        if fits(scene, obj):
            return obj
    return None


def random_background(rng) -> str:
    spec = load_spec()
    names = list(spec.backgrounds)
    return spec.default_background if rng.random() < 0.5 else names[rng.integers(len(names))]


def random_kind(rng, background: str, allow_held_out: bool = False, exclude=()) -> tuple[str, str]:
    """A (color, shape) allowed on `background`, not held out (unless allowed), not in `exclude`."""
    spec = load_spec()
    while True:
        color = list(spec.colors)[rng.integers(len(spec.colors))]
        shape = spec.shapes[rng.integers(len(spec.shapes))]
        if spec.allowed(color, shape, background, allow_held_out) and (color, shape) not in exclude:
            return color, shape


def sample_scene(rng, size: int, n_objects: int | None = None, allow_held_out: bool = False,
                 background: str | None = None, unique: bool = False) -> Scene:
    """A random scene obeying every rule; `unique` makes colour-shape pairs distinct (nameable objects)."""
    spec = load_spec()
    background = background or random_background(rng)
    n = n_objects or int(rng.integers(1, spec.max_objects + 1))
    scene = Scene(size, background)
    while len(scene.objects) < n:
        taken = {(o.color, o.shape) for o in scene.objects} if unique else ()
        color, shape = random_kind(rng, background, allow_held_out, taken)
        obj = place_object(rng, scene, shape, color)
        if obj is None:  # crowded: start over with the same count
            scene = Scene(size, background)
            continue
        scene = scene.with_objects(scene.objects + (obj,))
    return scene
