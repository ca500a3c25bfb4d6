"""Image <-> tensor conversions shared by every data source."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(image: np.ndarray | Image.Image, size: int | None = None) -> torch.Tensor:
    """uint8 HWC (or PIL) -> float [3, H, W] in [-1, 1], optionally resized (square, Lanczos)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float [3, H, W] in [-1, 1] -> uint8 HWC."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return array.permute(1, 2, 0).cpu().numpy()


def collate(samples: list[dict]) -> dict:
    """Stack a batch; text-to-image samples get a zero source so one batch can mix both tasks."""
    images = torch.stack([s["image"] for s in samples])
    sources = torch.stack([s["source"] if s.get("source") is not None else torch.zeros_like(s["image"]) for s in samples])
    batch = {
        "image": images,
        "source": sources,
        "is_edit": torch.tensor([s["task"] == "edit" for s in samples]),
        "text": [s["text"] for s in samples],
        "task": [s["task"] for s in samples],
        "key": [s["key"] for s in samples],
    }
    if all("shape_coverage" in s for s in samples):
        batch["shape_coverage"] = torch.stack([s["shape_coverage"] for s in samples])
    return batch
