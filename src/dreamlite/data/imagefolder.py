"""A folder of images with `metadata.jsonl`, the Hugging Face imagefolder convention.

Each line: `{"file_name": "a.png", "text": "caption"}`; an edit triplet adds the source image:
`{"file_name": "edited.png", "source_file_name": "input.png", "text": "instruction"}`. Malformed lines,
missing files and unreadable images are reported per item and skipped.
"""

from __future__ import annotations

import json
import os

import torch

from ..errors import DreamLiteError
from ..image_io import load_image
from .records import ErrorLog, make_sample
from .sharding import shard_info


def read_metadata(root: str, errors: ErrorLog) -> list[dict]:
    path = os.path.join(root, "metadata.jsonl")
    if not os.path.isfile(path):
        raise DreamLiteError(f"no metadata.jsonl in {root}")
    rows = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))  # a line that is not UTF-8 is one bad row
                if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
                    raise ValueError("needs a 'file_name' string")
                if not isinstance(row.get("text"), str):
                    raise ValueError("needs a 'text' string")
                if not isinstance(row.get("source_file_name", ""), str):
                    raise ValueError("'source_file_name' must be a string")
            except ValueError as e:
                errors.add(f"metadata.jsonl line {number}: {str(e).splitlines()[0]}")
                continue
            rows.append(row)
    return rows


class ImageFolderDataset(torch.utils.data.IterableDataset):
    """Iterates the folder's rows once (or forever with `repeat`), sharded over ranks and workers."""

    def __init__(self, root: str, size: int | None = None, repeat: bool = False):
        self.root, self.size, self.repeat = root, size, repeat
        self.errors = ErrorLog()
        self.rows = read_metadata(root, self.errors)
        if not self.rows:
            raise self.errors.nothing_usable(f"{root}/metadata.jsonl")

    def __len__(self):
        return len(self.rows)

    def load(self, row: dict):
        key = os.path.splitext(row["file_name"])[0]
        image = load_image(os.path.join(self.root, row["file_name"]))
        source = row.get("source_file_name")
        source = load_image(os.path.join(self.root, source)) if source else None
        return make_sample(key, image, row["text"], source, self.size)

    def __iter__(self):
        shard, num_shards = shard_info()
        while True:
            yielded = 0
            for row in self.rows[shard::num_shards]:
                try:
                    sample = self.load(row)
                except DreamLiteError as e:
                    self.errors.add(str(e))
                    continue
                yielded += 1
                yield sample
            if not self.repeat:
                return
            if not yielded:  # repeating a pass with nothing in it would spin forever
                raise self.errors.nothing_usable(f"{self.root} (part {shard + 1} of {num_shards})")
