"""WebDataset tar shards, the format large image-text corpora ship in: writing and streaming.

Shard layout, one record per sample: `<key>.png` (target), `<key>.src.png` (edit source, edits only),
`<key>.txt` (caption or instruction), `<key>.json` (task and, for the Shapes world, the scene graph).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable

import torch
import webdataset as wds
from tqdm.auto import tqdm

from ..errors import DreamLiteError
from .records import ErrorLog, decode_image, encode_png, make_sample


def write_shards(samples: Iterable[dict], out_dir: str, total: int | None = None, per_shard: int = 1000) -> list[str]:
    """Write samples with uint8 `image` (+ `source`) arrays to `out_dir/shard-000000.tar`, ...."""
    os.makedirs(out_dir, exist_ok=True)
    pattern = os.path.join(out_dir, "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=per_shard, verbose=0) as sink:
        for sample in tqdm(samples, total=total, desc="writing shards", unit="sample"):
            record = {"__key__": sample["key"], "png": encode_png(sample["image"]), "txt": sample["text"]}
            if "source" in sample:
                record["src.png"] = encode_png(sample["source"])
            meta = {k: sample[k] for k in ("task", "edit_type", "scene") if k in sample}
            record["json"] = json.dumps(meta).encode()
            sink.write(record)
    return sorted(glob.glob(os.path.join(out_dir, "shard-*.tar")))


def expand_shards(spec: str) -> list[str]:
    """A folder, a glob, or webdataset's brace notation (`data/shard-{000000..000009}.tar`)."""
    if os.path.isdir(spec):
        urls = sorted(glob.glob(os.path.join(spec, "*.tar")))
    elif "{" in spec:
        urls = list(wds.shardlists.expand_urls(spec))
    else:
        urls = sorted(glob.glob(spec))
    if not urls:
        raise DreamLiteError(f"no WebDataset shards found at {spec!r}")
    return urls


class WebDatasetStream(torch.utils.data.IterableDataset):
    """Samples from tar shards, split across ranks and dataloader workers by shard; bad records are skipped
    and counted in `errors` (per worker process)."""

    def __init__(self, spec: str, size: int | None = None, repeat: bool = False):
        self.urls, self.size, self.repeat = expand_shards(spec), size, repeat
        self.errors = ErrorLog()

    def __iter__(self):
        dataset = wds.WebDataset(self.urls, shardshuffle=False, nodesplitter=wds.split_by_node,
                                 workersplitter=wds.split_by_worker, handler=self._on_error, empty_check=False)
        while True:
            for record in dataset:
                sample = self._decode(record)
                if sample is not None:
                    yield sample
            if not self.repeat:
                return

    def _on_error(self, exc) -> bool:
        self.errors.add(f"shard read error: {exc}")
        return True  # keep going

    def _decode(self, record: dict):
        key = record.get("__key__", "?")
        try:
            if "png" not in record and "jpg" not in record:
                raise DreamLiteError(f"{key}: no image in record")
            image = decode_image(record.get("png") or record["jpg"], key)
            source = decode_image(record["src.png"], key) if "src.png" in record else None
            text = record.get("txt", b"")
            text = text.decode("utf-8") if isinstance(text, bytes) else text
            return make_sample(key, image, text, source, self.size)
        except DreamLiteError as e:
            self.errors.add(str(e))
            return None
