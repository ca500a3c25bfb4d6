"""Benchmark of the Shapes world and the detector (issue 3's acceptance numbers).

    python benchmarks/world_and_eval.py [--num 2000]

Prints JSON: scenes/s rendered at 128 px, detector accuracy (exact shapes and colours, centres within
2 px) on random scenes at 64/128/256 px, clean and after Gaussian blur (sigma 1) + noise (std 8), and the
detector's time per image. Date and machine are included so numbers in docs can cite the run.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "world"))
from test_detector import degrade, matches  # noqa: E402  (the same criterion the tests use)

from dreamlite.eval.detector import detect  # noqa: E402
from dreamlite.world.render import render  # noqa: E402
from dreamlite.world.scene import sample_scene  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000)
    args = parser.parse_args()
    out = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "python": platform.python_version(), "num": args.num}
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, 128) for _ in range(500)]
    start = time.perf_counter()
    for s in scenes:
        render(s)
    out["render_scenes_per_s_128px"] = round(len(scenes) / (time.perf_counter() - start), 1)
    for size in (64, 128, 256):
        for degraded in (False, True):
            rng = np.random.default_rng([1, size, degraded])
            good, seconds = 0, 0.0
            for _ in range(args.num):
                scene = sample_scene(rng, size, allow_held_out=True)
                image = render(scene)
                if degraded:
                    image = degrade(image, rng)
                t = time.perf_counter()
                detected, _ = detect(image)
                seconds += time.perf_counter() - t
                good += matches(scene, detected)
            key = f"{size}px_{'degraded' if degraded else 'clean'}"
            out[f"detector_accuracy_{key}"] = round(good / args.num, 4)
            out[f"detector_ms_per_image_{key}"] = round(1000 * seconds / args.num, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
