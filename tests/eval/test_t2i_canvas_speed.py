"""benchmarks/t2i_canvas_speed.py: both canvases train through the real t2i config, and the ratio is theirs."""

import json


def test_both_canvases_are_timed_and_bad_input_is_one_line(tmp_path, run_benchmark):
    out = tmp_path / "speed.json"
    done = run_benchmark("t2i_canvas_speed", "--steps", "4", "--rounds", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    median = report["median_steps_per_s"]
    assert set(report["steps_per_s"]) == {"in_context", "target"} and all(v > 0 for v in median.values())
    assert abs(report["ratio_target_over_in_context"] - median["target"] / median["in_context"]) < 1e-3
    for args in (["--vae", "no-such-model"], ["--steps", "2"]):
        done = run_benchmark("t2i_canvas_speed", *args)
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode != 0 and last.startswith("error:") and "Traceback" not in done.stderr
