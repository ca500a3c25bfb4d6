"""`dreamlite compare`: images are paired across two evaluations by path, counted, and sign-tested exactly."""

import json
import os
import shutil

import pytest

from dreamlite.cli import main
from dreamlite.errors import DreamLiteError
from dreamlite.eval.compare import compare, sign_test


def fake_evaluation(root, correct, dense, success, held_out=()):
    """An evaluate folder's per-image rows: `correct[i]` for geneval image i, `dense[i]` its DenseEval score."""
    rows = {
        "geneval": [{"path": f"{root}/geneval/{i:05d}/samples/0000.png", "prompt": f"prompt {i}",
                     "held_out": i in held_out, "correct": c} for i, c in enumerate(correct)],
        "dense": [{"path": f"{root}/dense/{i:05d}/samples/0000.png", "prompt": f"dense {i}", "score": s}
                  for i, s in enumerate(dense)],
        "edits": [{"key": f"add-{i:03d}", "path": f"{root}/edits/add-{i:03d}.png", "prompt": f"edit {i}", "success": s}
                  for i, s in enumerate(success)],
    }
    for sub, r in rows.items():
        os.makedirs(os.path.join(root, sub))
        with open(os.path.join(root, sub, "scores.json"), "w") as f:
            json.dump({"summary": {}, "rows": r}, f)
    return str(root)


def test_sign_test_is_exact():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert abs(sign_test(9, 1) - 2 * 11 / 1024) < 1e-12  # P(X <= 1) = (1 + 10) / 2^10, two-sided
    assert sign_test(1, 9) == sign_test(9, 1)
    assert sign_test(20, 0) < 1e-5


def test_compare_counts_discordant_pairs_per_benchmark(tmp_path):
    a = fake_evaluation(tmp_path / "a", [0, 0, 0, 1, 1, 0], [50, 40, 30], [False, True], held_out={5})
    b = fake_evaluation(tmp_path / "b", [1, 1, 0, 1, 0, 1], [60, 40, 20], [True, True], held_out={5})
    report = compare([a], [b])
    shape = report["ShapeEval images"]
    assert (shape["pairs"], shape["B better"], shape["B worse"]) == (5, 2, 1)
    assert abs(shape["mean A"] - 0.4) < 1e-9 and abs(shape["mean B"] - 0.6) < 1e-9
    assert report["ShapeEval held-out images"]["B better"] == 1
    dense = report["DenseEval images"]
    assert (dense["B better"], dense["B worse"]) == (1, 1)  # the tie is dropped
    assert report["EditEval cases"]["B better"] == 1


def test_compare_pairs_seeds_in_order_and_refuses_other_suites(tmp_path, capsys):
    a0 = fake_evaluation(tmp_path / "a0", [0] * 4, [0], [False])
    a1 = fake_evaluation(tmp_path / "a1", [1] * 4, [0], [False])
    b0 = fake_evaluation(tmp_path / "b0", [1] * 4, [0], [False])
    b1 = fake_evaluation(tmp_path / "b1", [1] * 4, [0], [False])
    out = tmp_path / "report.json"
    assert main(["compare", f"base={a0},{a1}", f"new={b0},{b1}", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| ShapeEval images | 8 | 0.500 | 1.000 | 4 | 0 | 0.125 |" in printed
    assert json.loads(out.read_text())["report"]["ShapeEval images"]["B better"] == 4

    other = tmp_path / "other"
    fake_evaluation(other, [1] * 4, [0], [False])
    rows = json.loads((other / "geneval" / "scores.json").read_text())
    rows["rows"][0]["prompt"] = "a different prompt"
    (other / "geneval" / "scores.json").write_text(json.dumps(rows))
    for argv, message in ((["compare", f"a={a0}", f"b={other}"], "compare runs of one suite"),
                          (["compare", f"a={a0}", f"b={b0},{b1}"], "one per seed"),
                          (["compare", f"{a0}", f"b={b0}"], "must be LABEL=DIR"),
                          (["compare", f"a={tmp_path / 'missing'}", f"b={b0}"], "is missing")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_compare_leaves_out_a_benchmark_neither_run_scored(tmp_path):
    """Runs of the GenEval prompts alone (benchmarks/checkpoint_iterates.py) compare on ShapeEval only."""
    a = fake_evaluation(tmp_path / "a", [0, 1, 0], [50], [False])
    b = fake_evaluation(tmp_path / "b", [1, 1, 1], [50], [False])
    full = fake_evaluation(tmp_path / "full", [1, 1, 1], [50], [False])
    for run in (a, b):
        shutil.rmtree(os.path.join(run, "dense"))
        shutil.rmtree(os.path.join(run, "edits"))
    report = compare([a], [b])
    assert set(report) == {"ShapeEval images"} and report["ShapeEval images"]["B better"] == 2
    with pytest.raises(DreamLiteError, match="is missing"):
        compare([a], [full])


def test_compare_refuses_folders_with_nothing_scored(tmp_path):
    """Two typos, or two folders that hold no scores, are an error rather than an empty table."""
    with pytest.raises(DreamLiteError, match="nothing to compare"):
        compare([str(tmp_path / "typo-a")], [str(tmp_path / "typo-b")])
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    with pytest.raises(DreamLiteError, match="nothing to compare"):
        compare([str(tmp_path / "x")], [str(tmp_path / "y")])
