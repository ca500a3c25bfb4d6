"""Turning stored records (bytes + text) into samples, with per-item errors instead of tracebacks."""

from __future__ import annotations

import io
import sys

from PIL import Image, UnidentifiedImageError

from ..errors import DreamLiteError
from ..image_io import to_rgb
from .transforms import to_tensor


def decode_image(data: bytes, what: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DreamLiteError(f"{what}: unreadable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def encode_png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_sample(key: str, image: Image.Image, text: str, source: Image.Image | None, size: int | None) -> dict:
    if not isinstance(text, str) or not text.strip():
        raise DreamLiteError(f"{key}: empty caption")
    sample = {"image": to_tensor(image, size), "text": text, "task": "edit" if source is not None else "generate", "key": key}
    if source is not None:
        sample["source"] = to_tensor(source, size)
    return sample


class ErrorLog:
    """Collects per-item problems so a run goes on. The first `say` of them are also printed to stderr as they
    happen, because a dataloader worker's log never reaches the trainer."""

    def __init__(self, limit: int = 20, say: int = 5):
        self.count, self.messages, self.limit, self.say = 0, [], limit, say

    def add(self, message: str):
        self.count += 1
        if len(self.messages) < self.limit:
            self.messages.append(message)
        if self.count <= self.say:
            more = "; later ones are counted, not printed" if self.count == self.say else ""
            print(f"skipped a training item: {message}{more}", file=sys.stderr)

    def nothing_usable(self, what: str) -> DreamLiteError:
        """The error for a full pass over a source that yielded no sample (instead of looping forever)."""
        first = f"; first problem: {self.messages[0]}" if self.messages else ""
        return DreamLiteError(f"{what} gave no usable sample ({self.count} skipped){first}")
