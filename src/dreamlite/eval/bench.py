"""Bench writers: sample a model on a prompt or edit file into the benchmark's own output layout.

Runs resume (an output that exists is skipped) and shard (`shard=(k, n)` takes every n-th item from k; under
torchrun the rank and world size are used when no shard is given), so many processes can fill one folder.
Image j of prompt i uses seed `seed + i * images_per_prompt + j`, whatever the batching or sharding.
"""

from __future__ import annotations

import json
import os

from tqdm.auto import tqdm

from ..data.sharding import distributed_rank_and_size
from ..errors import DreamLiteError
from ..image_io import save_image_atomic
from ..pipeline import generators_from_seeds
from .layout import Problems, check_edit_entry, read_edits, read_jsonl, sample_folder, sample_path


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return distributed_rank_and_size()
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise DreamLiteError(f"--shard must look like K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise DreamLiteError(f"--shard {text}: need 0 <= K < N")
    return k, n


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def bench_prompts(pipe, metadata: str, out: str, images_per_prompt: int = 4, seed: int = 0, batch_size: int = 8,
                  shard: tuple[int, int] = (0, 1), progress: bool = True, **sampling) -> dict:
    """GenEval's layout for every record of a `evaluation_metadata.jsonl`-schema file (dense prompts too)."""
    if images_per_prompt < 1:
        raise DreamLiteError("images per prompt must be at least 1")
    problems = Problems()
    records = read_jsonl(metadata, problems)
    k, n = shard
    todo = []
    for index, (_, record) in enumerate(records):
        if index % n != k:
            continue
        paths = [sample_path(out, index, j) for j in range(images_per_prompt)]
        if all(os.path.exists(p) for p in paths):
            continue
        os.makedirs(sample_folder(out, index), exist_ok=True)
        with open(os.path.join(sample_folder(out, index), "metadata.jsonl"), "w") as f:
            f.write(json.dumps(record) + "\n")
        todo.append((index, record, paths))
    per_call = max(1, batch_size // images_per_prompt)
    bar = tqdm(total=len(todo), desc="bench prompts", unit="prompt", disable=not progress)
    for chunk in _chunks(todo, per_call):
        seeds = [seed + index * images_per_prompt + j for index, _, _ in chunk for j in range(images_per_prompt)]
        images = pipe([record["prompt"] for _, record, _ in chunk], num_images_per_prompt=images_per_prompt,
                      generator=generators_from_seeds(seeds), **sampling).images
        for (_, _, paths), group in zip(chunk, _chunks(images, images_per_prompt)):
            for image, path in zip(group, paths):
                save_image_atomic(image, path)
        bar.update(len(chunk))
    bar.close()
    return {"prompts": len(records), "generated": len(todo), "skipped": sum(i % n == k for i in range(len(records))) - len(todo),
            "problems": problems.summary()}


def bench_edits(pipe, edits_file: str, images_root: str, out: str, seed: int = 0, batch_size: int = 8,
                shard: tuple[int, int] = (0, 1), progress: bool = True, **sampling) -> dict:
    """ImgEdit's layout (`<out>/<key>.png`) for every case of a `basic_edit.json`-schema file."""
    from ..image_io import load_image

    problems = Problems()
    edits = read_edits(edits_file)
    k, n = shard
    todo = []
    for index, (key, entry) in enumerate(edits.items()):
        if index % n != k or os.path.exists(os.path.join(out, f"{key}.png")):
            continue
        bad = check_edit_entry(key, entry)
        if bad:
            problems.add(bad)
            continue
        try:
            source = load_image(os.path.join(images_root, entry["id"]))
        except DreamLiteError as e:
            problems.add(f"{key}: {e}")
            continue
        todo.append((index, key, entry["prompt"], source))
    bar = tqdm(total=len(todo), desc="bench edits", unit="edit", disable=not progress)
    by_size = {}
    for item in todo:  # one pipeline call per batch of same-sized sources
        by_size.setdefault(item[3].size, []).append(item)
    for chunk in (c for items in by_size.values() for c in _chunks(items, batch_size)):
        images = pipe([p for _, _, p, _ in chunk], image=[s for _, _, _, s in chunk],
                      generator=generators_from_seeds([seed + i for i, _, _, _ in chunk]), **sampling).images
        for (_, key, _, _), image in zip(chunk, images):
            save_image_atomic(image, os.path.join(out, f"{key}.png"))
        bar.update(len(chunk))
    bar.close()
    return {"edits": len(edits), "generated": len(todo), "problems": problems.summary()}
