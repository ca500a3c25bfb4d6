"""The benchmarks' file layouts, read tolerantly: a bad line or image is one reported problem, not a traceback.

GenEval: prompts in `evaluation_metadata.jsonl` (one JSON record per line); outputs in
`<out>/<00000>/metadata.jsonl` + `<out>/<00000>/samples/<0000>.png`. ImgEdit: cases in `basic_edit.json`
(`{key: {id, prompt, edit_type}}`, `id` a path under an image root); outputs in `<out>/<key>.png`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import DreamLiteError
from ..image_io import load_image


@dataclass
class Problems:
    """Per-item problems of a scoring or bench run; the run goes on and the summary counts them."""

    messages: list[str] = field(default_factory=list)

    def add(self, message: str):
        self.messages.append(message)

    def __len__(self):
        return len(self.messages)

    def summary(self, limit: int = 20) -> dict:
        return {"count": len(self.messages), "first": self.messages[:limit]}


def read_jsonl(path: str, problems: Problems) -> list[tuple[int, dict]]:
    """(line number, record) for every well-formed record with a non-empty prompt; the rest are problems."""
    if not os.path.isfile(path):
        raise DreamLiteError(f"prompt file not found: {path}")
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.add(f"{path}:{number}: malformed JSON ({e.msg})")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
                problems.add(f"{path}:{number}: record without a prompt")
                continue
            records.append((number, record))
    return records


def read_edits(path: str) -> dict[str, dict]:
    """ImgEdit's `basic_edit.json`; malformed entries are kept and reported when scored or benched."""
    if not os.path.isfile(path):
        raise DreamLiteError(f"edit file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DreamLiteError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise DreamLiteError(f"{path}: expected an object {{key: {{id, prompt, edit_type}}}}")
    return data


def check_edit_entry(key: str, entry) -> str | None:
    """Why an ImgEdit entry cannot be used, or None."""
    if not isinstance(entry, dict):
        return f"{key}: entry is not an object"
    for name in ("id", "prompt"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            return f"{key}: missing {name!r}"
    return None


def sample_folder(out: str, index: int) -> str:
    return os.path.join(out, f"{index:05d}")


def sample_path(out: str, index: int, sample: int) -> str:
    return os.path.join(sample_folder(out, index), "samples", f"{sample:04d}.png")


def read_image_array(path: str) -> np.ndarray:
    """uint8 HxWx3, or a DreamLiteError naming the file."""
    return np.asarray(load_image(path))


def geneval_outputs(out: str, problems: Problems):
    """Yield (folder, record, [sample paths]) for every `<out>/<NNNNN>/` with readable metadata."""
    if not os.path.isdir(out):
        raise DreamLiteError(f"output folder not found: {out}")
    for name in sorted(os.listdir(out)):
        folder = os.path.join(out, name)
        if not (name.isdigit() and os.path.isdir(folder)):
            continue
        meta = os.path.join(folder, "metadata.jsonl")
        try:
            with open(meta, encoding="utf-8") as f:
                record = json.loads(f.readline())
            if not isinstance(record, dict) or "prompt" not in record:
                raise ValueError("no prompt")
        except FileNotFoundError:
            problems.add(f"{name}: missing metadata.jsonl")
            continue
        except (ValueError, UnicodeDecodeError) as e:
            problems.add(f"{name}: malformed metadata.jsonl ({e})")
            continue
        samples_dir = os.path.join(folder, "samples")
        samples = sorted(os.path.join(samples_dir, f) for f in os.listdir(samples_dir) if f.endswith(".png")) \
            if os.path.isdir(samples_dir) else []
        if not samples:
            problems.add(f"{name}: no samples")
            continue
        yield folder, record, samples
