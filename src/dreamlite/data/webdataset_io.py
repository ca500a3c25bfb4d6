"""WebDataset tar shards, the format large image-text corpora ship in: writing and streaming.

Shard layout, one record per sample: `<key>.png` (target; `.jpg`, `.jpeg` or `.webp` are read too),
`<key>.src.png` (edit source, edits only; `.src.jpg` ...), `<key>.txt` (caption or instruction, UTF-8),
`<key>.json` (task and, for the Shapes world, the scene graph).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable

import torch
import webdataset as wds
from tqdm.auto import tqdm

from ..atomic import atomic_dir, check_replaceable
from ..errors import DreamLiteError
from .records import ErrorLog, decode_image, encode_png, make_sample

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")


def write_shards(samples: Iterable[dict], out_dir: str, total: int | None = None, per_shard: int = 1000) -> list[str]:
    """Write samples with uint8 `image` (+ `source`) arrays to `out_dir/shard-000000.tar`, .... The folder is
    filled beside `out_dir` and renamed in, so it never mixes new shards with an earlier run's."""
    check_replaceable(out_dir, "shard-000000.tar")
    with atomic_dir(out_dir) as folder:
        pattern = os.path.join(folder, "shard-%06d.tar")
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
        missing = [u for u in urls if "://" not in u and not os.path.isfile(u)]
        if missing:
            raise DreamLiteError(f"{len(missing)} of the {len(urls)} shards {spec!r} names do not exist, e.g. {missing[0]}")
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
            yielded = 0
            for record in dataset:
                sample = self._decode(record)
                if sample is not None:
                    yielded += 1
                    yield sample
            if not self.repeat:
                return
            if not yielded:  # repeating a pass with nothing in it would spin forever
                raise self.errors.nothing_usable(f"the shards at {self.urls[0]}{' ...' if len(self.urls) > 1 else ''}")

    def _on_error(self, exc) -> bool:
        self.errors.add(f"shard read error: {exc}")
        return True  # keep going

    def _decode(self, record: dict):
        key = record.get("__key__", "?")
        try:
            image = _image_bytes(record, "")
            if image is None:
                raise DreamLiteError(f"{key}: no image in record (png, jpg, jpeg or webp)")
            source = _image_bytes(record, "src.")
            text = record.get("txt", b"")
            try:
                text = text.decode("utf-8") if isinstance(text, bytes) else text
            except UnicodeDecodeError:
                raise DreamLiteError(f"{key}: caption is not UTF-8") from None
            return make_sample(key, decode_image(image, key), text,
                               None if source is None else decode_image(source, f"{key} (source)"), self.size)
        except DreamLiteError as e:
            self.errors.add(str(e))
            return None


def _image_bytes(record: dict, prefix: str) -> bytes | None:
    """The record's first non-empty image entry (`png`, `jpg`, ... after `prefix`), or None."""
    return next((record[prefix + ext] for ext in IMAGE_EXTENSIONS if record.get(prefix + ext)), None)
