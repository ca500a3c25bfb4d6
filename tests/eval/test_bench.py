"""Bench writers: the benchmarks' layouts, sharding, resume, batch-independent seeds, bad entries reported."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from dreamlite.errors import DreamLiteError
from dreamlite.eval.bench import bench_edits, bench_prompts

RECORDS = [{"tag": "colors", "prompt": p, "include": [{"class": "circle", "count": 1}]}
           for p in ("a photo of a red circle", "a photo of a blue square", "a photo of two stars")]


def write_metadata(path):
    with open(path, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
        f.write("{broken\n")


def test_prompts_layout_shards_resume_and_seeds(minilm_pipe, tmp_path):
    meta = tmp_path / "meta.jsonl"
    write_metadata(meta)
    kw = dict(images_per_prompt=2, num_inference_steps=2, height=32, width=32, progress=False)
    first = bench_prompts(minilm_pipe, str(meta), str(tmp_path / "a"), shard=(0, 2), batch_size=2, **kw)
    assert first["generated"] == 2 and first["problems"]["count"] == 1  # records 0 and 2; the broken line reported
    bench_prompts(minilm_pipe, str(meta), str(tmp_path / "a"), shard=(1, 2), batch_size=2, **kw)
    for i in range(3):
        assert json.loads(open(tmp_path / "a" / f"{i:05d}" / "metadata.jsonl").readline())["prompt"] == RECORDS[i]["prompt"]
        assert all((tmp_path / "a" / f"{i:05d}" / "samples" / f"{j:04d}.png").exists() for j in range(2))
    again = bench_prompts(minilm_pipe, str(meta), str(tmp_path / "a"), batch_size=2, **kw)
    assert again["generated"] == 0 and again["skipped"] == 3  # resume: nothing left to do
    bench_prompts(minilm_pipe, str(meta), str(tmp_path / "b"), batch_size=6, **kw)  # other batching, no sharding
    other = np.asarray(Image.open(tmp_path / "b" / "00000" / "samples" / "0001.png")).astype(int)
    assert np.abs(other - np.asarray(Image.open(tmp_path / "b" / "00000" / "samples" / "0000.png")).astype(int)).max() > 10
    for i in range(3):
        for j in range(2):
            rel = os.path.join(f"{i:05d}", "samples", f"{j:04d}.png")
            a, b = (np.asarray(Image.open(tmp_path / d / rel)).astype(int) for d in "ab")
            assert np.abs(a - b).max() <= 2  # same seed, same image (up to batched-matmul rounding)


def test_edits_layout_and_bad_entries(minilm_pipe, tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (32, 32), "white").save(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "bad.png").write_bytes(b"not a png")
    edits = {"k1": {"id": "a.png", "prompt": "add a red circle", "edit_type": "add"},
             "k2": {"id": "bad.png", "prompt": "remove it", "edit_type": "remove"},
             "k3": {"id": "missing.png", "prompt": "x", "edit_type": "add"},
             "k4": {"prompt": "no id"}}
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(edits))
    result = bench_edits(minilm_pipe, str(path), str(tmp_path / "img"), str(tmp_path / "out"), num_inference_steps=2,
                         progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["k1.png"] and result["problems"]["count"] == 3


def test_evaluate_records_cost_and_machine_and_rejects_a_runtime_size_mismatch(model_dir, tmp_path, capsys, monkeypatch):
    from dreamlite.cli import main
    from dreamlite.eval.suite import build_suite

    suite = tmp_path / "suite"
    build_suite(str(suite), size=32, per_tag=1, held_out_per_tag=1, dense=2, per_edit_type=1, held_out_edits=1)
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["evaluate", "--model", str(model_dir), "--suite", str(tmp_path / "notes.txt"), "--size", "32",
                 "--out", str(tmp_path / "bad")]) == 2  # a file given as the suite is never replaced by one
    assert "is a file" in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"
    prompts = sum(1 for f in ("geneval.jsonl", "dense.jsonl") for _ in open(suite / f))
    edits = len(json.loads((suite / "edits" / "basic_edit.json").read_text()))
    args = ["evaluate", "--model", str(model_dir), "--suite", str(suite), "--size", "32", "--steps", "2",
            "--images-per-prompt", "2", "--batch-size", "8"]
    assert main([*args, "--out", str(tmp_path / "bad"), "--runtime", "onnx"]) == 2  # exports have static shapes
    assert "drop --size" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    for bad, message in ((["--steps", "0"], "sampling steps"), (["--size", "30"], "multiple of 16"),
                         (["--noise-scale", "5"], "noise_scale must be a number in"),
                         (["--images-per-prompt", "0"], "--images-per-prompt must be at least 1"),
                         (["--batch-size", "0"], "--batch-size must be at least 1"),
                         (["--guidance", "nan"], "--guidance must be a finite number")):
        assert main([*args, *bad, "--out", str(tmp_path / "bad")]) == 2  # checked before the suite or output is made
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*args, "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    cost = summary["cost"]
    assert cost["generate"]["images"] == 2 * prompts and cost["edit"]["images"] == edits
    assert cost["generate"]["unet_evaluations_per_image"] == 4 and cost["edit"]["unet_evaluations_per_image"] == 6
    assert summary["mode"] == "base" and summary["runtime"] == "pytorch" and cost["edit"]["seconds"] > 0
    assert summary["machine"].startswith(f"{os.cpu_count()}-core ") and summary["date"].endswith(" UTC")  # timings name their machine
    # --edit-mask auto leaves generation alone (the blending itself: tests/test_pipeline.py) and counts generate_mask's 2 x 8 evaluations per edit.
    assert main([*args, "--out", str(tmp_path / "bad"), "--edit-mask", "auto", "--runtime", "onnx", "--size", "64"]) == 2
    assert "PyTorch pipeline only" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    import dreamlite.eval.bench as bench

    calls, real = [], bench.bench_edits
    monkeypatch.setattr(bench, "bench_edits", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    assert main([*args, "--out", str(tmp_path / "masked"), "--edit-mask", "auto"]) == 0
    assert [kw.get("mask_image") for kw in calls] == ["auto"]  # the edits get the mask, once
    masked = json.loads((tmp_path / "masked" / "summary.json").read_text())
    assert masked["cost"]["edit"]["unet_evaluations_per_image"] == 6 + 16
    assert masked["cost"]["generate"]["unet_evaluations_per_image"] == 4
    for name in os.listdir(tmp_path / "eval" / "geneval"):
        if name.endswith(".png"):
            assert (tmp_path / "eval" / "geneval" / name).read_bytes() == (tmp_path / "masked" / "geneval" / name).read_bytes()
    assert masked["editeval"]["cases"] + masked["editeval"]["held_out"]["cases"] == edits


def test_suite_checks_its_arguments_and_never_leaves_half_a_suite(tmp_path):
    from dreamlite.eval.suite import build_suite

    with pytest.raises(DreamLiteError, match="multiple of 16"):
        build_suite(str(tmp_path / "s"), size=0)
    with pytest.raises(DreamLiteError, match="per_tag must be an integer >= 0"):
        build_suite(str(tmp_path / "s"), size=32, per_tag=-1)
    assert os.listdir(tmp_path) == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(DreamLiteError, match="is not empty and has no geneval.jsonl"):
        build_suite(str(tmp_path / "notes"), size=32)
    assert os.listdir(tmp_path / "notes") == ["keep.txt"]


def test_score_refuses_an_empty_folder_and_reports_a_malformed_record(tmp_path, capsys):
    from dreamlite.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["score", "geneval", str(tmp_path / "empty")]) == 2
    assert "nothing to score" in capsys.readouterr().err and os.listdir(tmp_path / "empty") == []
    sample = tmp_path / "bad" / "00000"
    (sample / "samples").mkdir(parents=True)
    (sample / "metadata.jsonl").write_text(json.dumps({"prompt": "a circle", "include": [{"class": "circle"}]}) + "\n")
    Image.new("RGB", (32, 32), (255, 255, 255)).save(sample / "samples" / "0000.png")
    assert main(["score", "geneval", str(tmp_path / "bad")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["problems"]["count"] == 1 and "bad record (KeyError" in summary["problems"]["first"][0]
