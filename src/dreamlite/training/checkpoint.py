"""Atomic, resumable checkpoints: tensors in safetensors, optimizer state read back with weights_only.

A checkpoint is filled in a temporary folder and renamed into place (`atomic_dir`), so a killed run leaves either the previous
complete checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_dir
from ..errors import DreamLiteError

PATTERN = re.compile(r"^step-(\d{8})$")
CHECKPOINT_FILES = ("model.safetensors", "optimizer.pt", "state.json")  # what every stage writes


def save_checkpoint(directory: str, step: int, tensors: dict[str, dict[str, torch.Tensor]], optim_state: dict,
                    state: dict, keep: int = 2) -> str:
    final = os.path.join(directory, f"step-{step:08d}")
    with atomic_dir(final) as tmp:
        for name, group in tensors.items():
            save_file({k: v.detach().contiguous().cpu() for k, v in group.items()},
                      os.path.join(tmp, f"{name}.safetensors"))
        torch.save(optim_state, os.path.join(tmp, "optimizer.pt"))
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump({**state, "step": step}, f, indent=2)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    names = sorted(n for n in os.listdir(directory) if PATTERN.match(n))
    return [os.path.join(directory, n) for n in names]


def resolve_checkpoint(directory: str, which: str) -> str:
    """'latest' -> newest complete checkpoint in `directory`; otherwise a checkpoint folder path."""
    if which == "latest":
        found = list_checkpoints(directory)
        if not found:
            raise DreamLiteError(f"--resume latest: no checkpoint in {directory}")
        return found[-1]
    missing = [f for f in CHECKPOINT_FILES if not os.path.isfile(os.path.join(which, f))]
    if missing:
        raise DreamLiteError(f"not a complete checkpoint folder: {which} (missing {', '.join(missing)})")
    return which


def load_checkpoint(path: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict, dict]:
    try:
        tensors = {f[: -len(".safetensors")]: load_file(os.path.join(path, f))
                   for f in os.listdir(path) if f.endswith(".safetensors")}
        optim_state = torch.load(os.path.join(path, "optimizer.pt"), weights_only=True)  # no arbitrary unpickling
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
    except (OSError, ValueError, RuntimeError, SafetensorError, pickle.UnpicklingError) as e:
        raise DreamLiteError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from e
    if not isinstance(state, dict) or "step" not in state:
        raise DreamLiteError(f"cannot read checkpoint {path}: state.json has no step")
    return tensors, optim_state, state


def checkpoint_weights(path: str, which: str = "ema") -> dict[str, torch.Tensor]:
    """One checkpoint's network weights: `model` (the raw weights at that step) or `ema` (their moving average,
    what a finished stage exports), so checkpoints other than the last can be sampled and scored."""
    file = os.path.join(path, f"{which}.safetensors")
    if which not in ("model", "ema") or not os.path.isfile(file):
        raise DreamLiteError(f"no {which!r} weights in checkpoint {path} (kinds: model, ema)")
    return load_file(file)
