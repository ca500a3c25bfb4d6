"""benchmarks/latent_colours.py: colour pairs carry their confusions whichever way round they were named."""

import json


def test_confusions_land_on_their_unordered_pair_and_bad_input_is_one_line(tmp_path, run_benchmark):
    failures = tmp_path / "failures.json"
    # "black drawn as green" and "green drawn as black" are one pair, whatever the spec's colour order
    failures.write_text(json.dumps({"wrong colour, drawn in": {"black": {"green": 3}, "green": {"black": 2},
                                                               "red": {"orange": 1}}}))
    out = tmp_path / "out.json"
    done = run_benchmark("latent_colours", "shapes-base", "--failures", str(failures), "--json", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    by_pair = {tuple(sorted(r["pair"])): r for r in report["pairs"]}
    assert len(by_pair) == 45 and by_pair[("black", "green")]["confusions"] == 5
    assert by_pair[("orange", "red")]["confusions"] == 1 and report["summary"]["confusions"] == 6
    assert all(0 < r["distance"] and abs(r["indistinct_above_noise"] - r["distance"] / (1 + r["distance"])) < 2e-3
               for r in report["pairs"])
    (tmp_path / "bad.json").write_text(json.dumps({"unmet clauses": {}}))
    for args in (["--failures", str(tmp_path / "bad.json")], ["--background", "mauve"], ["no-such-model"]):
        done = run_benchmark("latent_colours", *args)
        last = done.stderr.strip().splitlines()[-1]  # libraries may warn on import before it
        assert done.returncode != 0 and last.startswith("error:") and "Traceback" not in done.stderr
