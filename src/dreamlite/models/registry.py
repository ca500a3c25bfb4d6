"""Shipped models: small checkpoints inside the package, addressable by name."""

from __future__ import annotations

import os

from ..errors import DreamLiteError

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shipped")
DEFAULT_ORDER = ("shapes-mobile", "shapes-base")  # the first one installed is the default


def shipped_models() -> list[str]:
    if not os.path.isdir(SHIPPED_DIR):
        return []
    return sorted(d for d in os.listdir(SHIPPED_DIR) if os.path.isfile(os.path.join(SHIPPED_DIR, d, "model_index.json")))


def default_model() -> str:
    for name in DEFAULT_ORDER:
        if name in shipped_models():
            return name
    raise DreamLiteError(
        "no default model is installed yet; pass --model DIR (a diffusers-layout folder), "
        "or train one with `dreamlite train --recipe tpj --out DIR`"
    )


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """A folder path, or the folder of a shipped model, or the default model when None."""
    if name_or_path is None:
        name_or_path = default_model()
    name_or_path = os.fspath(name_or_path)
    if os.path.isdir(name_or_path):
        return name_or_path
    if name_or_path in shipped_models():
        return os.path.join(SHIPPED_DIR, name_or_path)
    shipped = ", ".join(shipped_models()) or "none installed yet"
    raise DreamLiteError(f"unknown model {name_or_path!r}: not a folder and not a shipped model (shipped: {shipped})")
