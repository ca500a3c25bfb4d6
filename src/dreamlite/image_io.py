"""Reading user images: every mode PIL can open becomes 8-bit RGB; anything unreadable is one clear error."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_path
from .errors import DreamLiteError


def to_rgb(image: Image.Image) -> Image.Image:
    """Grey, palette, RGBA (composited on white), CMYK and 16-bit images become 8-bit RGB."""
    if image.width == 0 or image.height == 0:
        raise DreamLiteError(f"image has zero size ({image.width}x{image.height})")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if arr.max() > 255 else 255.0
        image = Image.fromarray(np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image file (truncated files fail here, not halfway through sampling)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DreamLiteError(f"image not found: {path}")
    if os.path.isdir(path):
        raise DreamLiteError(f"expected an image file, got a folder: {path}")
    if os.path.getsize(path) == 0:
        raise DreamLiteError(f"image file is empty: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except UnidentifiedImageError:
        raise DreamLiteError(f"not an image file (unrecognised format): {path}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DreamLiteError(f"cannot read image {path}: {str(e).splitlines()[0] or 'corrupt or truncated'}") from None


def save_image_atomic(image: Image.Image, path: str | os.PathLike):
    """Write next to the target then rename, so an interrupted run never leaves a partial image."""
    with atomic_path(path) as tmp:
        image.save(tmp, format=None if os.path.splitext(tmp)[1] else "PNG")  # no extension: PNG
