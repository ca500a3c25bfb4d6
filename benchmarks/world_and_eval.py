"""Benchmark of the Shapes world and the detector (issue 3's acceptance numbers).

    python benchmarks/world_and_eval.py [--num 2000] [--sizes 64 128 256] [--conditions clean degraded]

Prints JSON: scenes/s rendered at 128 px, detector accuracy (exact shapes and colours, centres within
2 px) on random scenes at 64/128/256 px, clean and after Gaussian blur (sigma 1) + noise (std 8), and the
detector's time per image, both wall-clock and CPU time of this process (the CPU time does not depend on
what else the shared machine runs; the load average is recorded beside it). Date and machine are included
so numbers in docs can cite the run.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "world"))
from test_detector import degrade, matches  # noqa: E402  (the same criterion the tests use)

from dreamlite.eval.detector import detect  # noqa: E402
from dreamlite.machine import measurement_stamp  # noqa: E402
from dreamlite.world.render import render  # noqa: E402
from dreamlite.world.scene import sample_scene  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="random scenes per size and condition")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--conditions", nargs="+", choices=["clean", "degraded"], default=["clean", "degraded"],
                        help="each size and condition has its own seed, so runs split this way give the same numbers")
    args = parser.parse_args()
    out = {**measurement_stamp(),
           "python": platform.python_version(), "num": args.num, "load_average_start": _load()}
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, 128) for _ in range(500)]
    start, cpu = time.perf_counter(), time.process_time()
    for s in scenes:
        render(s)
    out["render_scenes_per_s_128px"] = round(len(scenes) / (time.perf_counter() - start), 1)
    out["render_cpu_scenes_per_s_128px"] = round(len(scenes) / (time.process_time() - cpu), 1)
    for size in args.sizes:
        for degraded in [c == "degraded" for c in args.conditions]:
            rng = np.random.default_rng([1, size, degraded])
            good, seconds, cpu = 0, 0.0, 0.0
            key = f"{size}px_{'degraded' if degraded else 'clean'}"
            for i in range(args.num):
                scene = sample_scene(rng, size, allow_held_out=True)
                image = render(scene)
                if degraded:
                    image = degrade(image, rng)
                t, c = time.perf_counter(), time.process_time()
                detected, _ = detect(image)
                seconds += time.perf_counter() - t
                cpu += time.process_time() - c
                good += matches(scene, detected)
                if (i + 1) % 100 == 0:  # progress on long runs (a shared machine can make them very long)
                    print(f"{key}: {good}/{i + 1} correct, {1000 * cpu / (i + 1):.1f} CPU ms per image",
                          file=sys.stderr, flush=True)
            out[f"detector_accuracy_{key}"] = round(good / args.num, 4)
            out[f"detector_ms_per_image_{key}"] = round(1000 * seconds / args.num, 2)
            out[f"detector_cpu_ms_per_image_{key}"] = round(1000 * cpu / args.num, 2)
    out["load_average_end"] = _load()
    print(json.dumps(out, indent=2))


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    main()
