"""Text encoding per training batch with and without the trainer's prompt cache, side by side in one run.

    python benchmarks/text_cache.py [--stage t2i|edit|joint] [--batches 3000] [--batch-size 16] [--timed 100] [--json F]

Prompts come from the stage's own Shapes stream (the default configs' seeds), prefixed and condition-dropped
as the trainer does. The cache is first filled by `--batches` batches of prompts (the length of the stage, where
its hit rate is measured); then `--timed` further batches are encoded by both encoders, alternating, and the
mean milliseconds per batch are reported. Only prompts are drawn, no images, so it is quick.
"""

import argparse
import json
import time

import numpy as np
import torch

from dreamlite.data.shapes import draw_sample
from dreamlite.machine import measurement_stamp
from dreamlite.models.text_encoders import (
    CachedPromptEncoder,
    load_minilm,
    prompt_encoder_for,
    with_task_prefix,
)

SEEDS = {"t2i": 2, "edit": 3, "joint": 4}  # data.seed of the shipped stage configs


def prompt(seed: int, index: int, stage: str) -> str:
    """The (prefixed) text of sample `index` of the stage's stream, drawn without rendering."""
    drawn = draw_sample(seed, index, stage, 64)
    return with_task_prefix(drawn["text"], drawn["task"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", choices=sorted(SEEDS), default="t2i")
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--timed", type=int, default=100)
    ap.add_argument("--drop-text", type=float, default=0.1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_minilm()
    plain = prompt_encoder_for(model, tokenizer)
    cached = CachedPromptEncoder(plain)
    rng = np.random.default_rng(0)
    seed, n = SEEDS[args.stage], args.batch_size

    def batch(b):
        texts = [prompt(seed, b * n + i, args.stage) for i in range(n)]
        return ["" if rng.random() < args.drop_text else t for t in texts]

    for b in range(args.batches):
        cached.encode(batch(b), "generate")
    hit_rate = cached.hits / (cached.hits + cached.misses)
    times = {"plain": 0.0, "cached": 0.0}
    for b in range(args.batches, args.batches + args.timed):
        texts = batch(b)
        for name, encoder in (("plain", plain), ("cached", cached)) if b % 2 else (("cached", cached), ("plain", plain)):
            start = time.perf_counter()
            encoder.encode(texts, "generate")
            times[name] += time.perf_counter() - start
    result = {**measurement_stamp(), "stage": args.stage, "batches": args.batches, "batch_size": n,
              "hit_rate_over_stage": round(hit_rate, 3), "cache_entries": len(cached.cache),
              "cache_mib": round(cached.bytes / 2**20, 1), "timed_batches": args.timed,
              "ms_per_batch": {k: round(v / args.timed * 1000, 1) for k, v in times.items()}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
