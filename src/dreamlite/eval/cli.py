"""`dreamlite bench ...` (sample into a benchmark's layout), `dreamlite score ...` (exact scores + report),
`dreamlite evaluate` (the ready suite end to end: bench, score, one summary), `dreamlite compare` (two
evaluations image by image, with a sign test)."""

from __future__ import annotations

import argparse
import json
import os
import time

from ..deploy import RUNTIMES
from ..errors import DreamLiteError


def _pipe(args):
    from ..cli import _load_pipeline

    return _load_pipeline(args.model)


def _sampling(args) -> dict:
    """Pipeline keyword arguments from the CLI flags, checked before any suite or output folder is written."""
    from ..guidance import check_guidance_scale, check_steps, resolve_noise_scale
    from ..pipeline import check_size

    if args.steps is not None:
        check_steps(args.steps)
    for flag in ("batch_size", "images_per_prompt"):
        if getattr(args, flag, 1) < 1:
            raise DreamLiteError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    for flag in ("guidance", "image_guidance"):
        if getattr(args, flag, None) is not None:
            check_guidance_scale(f"--{flag.replace('_', '-')}", getattr(args, flag))
    if args.size is not None:
        check_size(args.size, args.size)
    if args.noise_scale is not None:
        resolve_noise_scale({}, args.noise_scale)
    kw = {"num_inference_steps": args.steps, "guidance_scale": args.guidance,
          "guidance_max_sigma": args.guidance_max_sigma, "noise_scale": args.noise_scale}
    if getattr(args, "image_guidance", None) is not None:
        kw["image_guidance_scale"] = args.image_guidance
    if args.size is not None:
        kw.update(height=args.size, width=args.size)
    return kw


def _edit_sampling(args) -> dict:
    """`_sampling` plus the edit-only options (`--edit-mask`)."""
    kw = _sampling(args)
    if getattr(args, "edit_mask", None) is not None:
        kw["mask_image"] = args.edit_mask
    return kw


def cmd_bench_prompts(args):
    from .bench import bench_prompts, parse_shard

    shard = parse_shard(args.shard)
    result = bench_prompts(_pipe(args), args.metadata, args.out, args.images_per_prompt, args.seed, args.batch_size,
                           shard, **_sampling(args))
    print(json.dumps(result, indent=2))


def cmd_bench_imgedit(args):
    from .bench import bench_edits, parse_shard

    shard = parse_shard(args.shard)
    result = bench_edits(_pipe(args), args.edits, args.images, args.out, args.seed, args.batch_size, shard,
                         **_edit_sampling(args))
    print(json.dumps(result, indent=2))


def cmd_suite(args):
    from .suite import build_suite

    counts = build_suite(args.out, seed=args.seed, size=args.size, per_tag=args.per_tag, dense=args.dense,
                         per_edit_type=args.per_edit_type, truth=args.truth)
    print(json.dumps({"suite": args.out, **counts}, indent=2))


def _score(kind: str, out: str, report_dir: str | None, **kw) -> dict:
    from .denseeval import score_dense
    from .editeval import score_imgedit
    from .layout import read_edits
    from .report import write_report
    from .shapeeval import score_geneval

    start = time.time()
    if kind == "geneval":
        result, title, source_of = score_geneval(out), "ShapeEval (GenEval rules)", None
    elif kind == "dense":
        result, title, source_of = score_dense(out), "DenseEval (DPG-Bench analogue)", None
    else:
        result = score_imgedit(out, kw["edits"], kw["images"], kw["truth"], kw["min_psnr"])
        title = "EditEval (ImgEdit categories)"
        edits = read_edits(kw["edits"])

        def source_of(row):
            return os.path.join(kw["images"], edits[row["key"]]["id"])
    if not result["rows"] and not result["summary"]["problems"]["count"]:
        raise DreamLiteError(f"nothing to score in {out}: no {kind} outputs")
    result["summary"]["seconds"] = round(time.time() - start, 2)
    result["summary"]["report"] = write_report(result, report_dir or out, title, source_of)
    return result["summary"]


def cmd_score(args):
    kw = {}
    if args.kind == "imgedit":
        missing = [f"--{n}" for n in ("edits", "images", "truth") if getattr(args, n) is None]
        if missing:
            raise DreamLiteError(f"score imgedit needs {' '.join(missing)}")
        kw = {"edits": args.edits, "images": args.images, "truth": args.truth, "min_psnr": args.min_psnr}
    print(json.dumps(_score(args.kind, args.out, args.report, **kw), indent=2))


EXPORT_TEXT_LEN = 96  # exported graphs have a fixed text length; the suite's dense prompts reach 68 MiniLM tokens


def cmd_evaluate(args):
    """Bench and score the model on the ready suite (built from --seed if --suite is not given)."""
    from ..deploy.runtimes import runtime_pipeline
    from ..edit_mask import DEFAULT_MAPS
    from ..machine import measurement_stamp
    from ..pipeline import unet_evaluations_per_image
    from .bench import bench_edits, bench_prompts
    from .suite import build_suite

    suite = args.suite or os.path.join(args.out, "suite")
    model, sampling = _pipe(args), _sampling(args)
    if args.edit_mask is not None and args.runtime != "pytorch":
        raise DreamLiteError(f"--edit-mask runs in the PyTorch pipeline only; drop it or --runtime {args.runtime}")
    if args.runtime != "pytorch" and args.size not in (None, model.default_resolution):
        raise DreamLiteError(f"--runtime {args.runtime} samples at the model's {model.default_resolution} px (exported "
                             f"static shapes); drop --size")
    if not os.path.isfile(os.path.join(suite, "geneval.jsonl")):  # edit sources at the size the model works at
        build_suite(suite, seed=args.seed, size=args.size or model.default_resolution)
    pipe = runtime_pipeline(model, args.runtime, args.export_dir or os.path.join(args.out, args.runtime),
                            text_len=EXPORT_TEXT_LEN, batch=args.batch_size)
    start = time.time()
    generated = [bench_prompts(pipe, os.path.join(suite, f"{name}.jsonl"), os.path.join(args.out, name),
                               args.images_per_prompt, args.seed, args.batch_size, **sampling)
                 for name in ("geneval", "dense")]
    generate_seconds = time.time() - start
    edited = bench_edits(pipe, os.path.join(suite, "edits", "basic_edit.json"), os.path.join(suite, "edits", "images"),
                         os.path.join(args.out, "edits"), args.seed, args.batch_size, **_edit_sampling(args))
    sample_seconds = time.time() - start
    guidance, image_guidance = model.resolve_guidance(args.guidance, args.image_guidance)
    max_sigma = model.resolve_max_sigma(args.guidance_max_sigma)
    sigmas = model.step_sigmas(args.steps, args.size, args.size)
    mask_cost = {"generate": 0, "edit": 2 * DEFAULT_MAPS if args.edit_mask else 0}  # generate_mask's two branches
    cost = {task: {"images": n, "seconds": round(sec, 1), "seconds_per_image": round(sec / max(n, 1), 3),
                   "unet_evaluations_per_image": mask_cost[task] + unet_evaluations_per_image(
                       model.config.mode, task, args.steps, guidance, image_guidance, sigmas, max_sigma)}
            for task, n, sec in (("generate", sum(g["generated"] for g in generated) * args.images_per_prompt, generate_seconds),
                                 ("edit", edited["generated"], sample_seconds - generate_seconds))}
    edits = {"edits": os.path.join(suite, "edits", "basic_edit.json"), "images": os.path.join(suite, "edits", "images"),
             "truth": os.path.join(suite, "edits", "truth.json"), "min_psnr": args.min_psnr}
    summary = {**measurement_stamp(), "model": args.model or "default", "suite": suite,
               "sampling_seconds": round(sample_seconds, 1), "mode": model.config.mode, "runtime": args.runtime, "cost": cost,
               "settings": {k: v for k, v in vars(args).items() if k not in ("func", "command", "bench_command")},
               "shapeeval": _score("geneval", os.path.join(args.out, "geneval"), None),
               "denseeval": _score("dense", os.path.join(args.out, "dense"), None),
               "editeval": _score("imgedit", os.path.join(args.out, "edits"), None, **edits)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    s, d, e = summary["shapeeval"], summary["denseeval"], summary["editeval"]
    print(json.dumps({"shapeeval": s["overall"], "shapeeval_held_out": s["held_out"]["overall"], "denseeval": d["overall"],
                      "editeval_success": e["success"], "editeval_preservation_db": e["preservation_db"],
                      "editeval_held_out": e["held_out"]["success"], "summary": os.path.join(args.out, "summary.json")}, indent=2))


def _labelled_folders(spec: str, name: str) -> tuple[str, list[str]]:
    label, sep, folders = spec.partition("=")
    if not sep or not label or not folders:
        raise DreamLiteError(f"{name} must be LABEL=DIR[,DIR...], got {spec!r}")
    return label, folders.split(",")


def cmd_compare(args):
    from .compare import compare, table

    (label_a, a), (label_b, b) = _labelled_folders(args.a, "A"), _labelled_folders(args.b, "B")
    report = compare(a, b)
    print(table(label_a, label_b, report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"A": {label_a: a}, "B": {label_b: b}, "report": report}, f, indent=2)


def _sampling_args(p, edit: bool = False, shard: bool = True):
    p.add_argument("--model", default=None, help="model folder or shipped name (default: the shipped default)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's mode default)")
    p.add_argument("--guidance", type=float, default=None, help="text guidance (base mode)")
    p.add_argument("--guidance-max-sigma", type=float, default=None,
                   help="guide only at steps whose noise level is at most this (default: the model's, else 1)")
    p.add_argument("--noise-scale", type=float, default=None,
                   help="scale of the noise each sampling step carries on (epsilon scaling; default: the model's, else 1)")
    if edit:
        p.add_argument("--image-guidance", type=float, default=None, help="image guidance (base mode)")
        p.add_argument("--edit-mask", default=None, choices=("auto",),
                       help="edits: keep the source latent outside the region the instruction acts on, estimated "
                            "by the model (DiffEdit; 16 more U-Net evaluations per edit). Default: the paper's sampler")
    p.add_argument("--size", type=int, default=None, help="output side in pixels (default: model resolution / source size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="images per pipeline call")
    if shard:
        p.add_argument("--shard", default=None, help="K/N: this process takes items K, K+N, ... (default: torchrun rank)")


def register(sub: argparse._SubParsersAction):
    bench = sub.add_parser("bench", help="sample a model into a benchmark's layout",
                           description="Sample a model into GenEval's or ImgEdit's layout (resumable, shardable).")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    for name, what in (("geneval", "GenEval's evaluation_metadata.jsonl (its own 553 prompts work too)"),
                       ("dense", "a dense-prompt file (same layout as GenEval)")):
        p = bsub.add_parser(name, help=f"prompts from {what}")
        p.add_argument("--metadata", required=True, help="prompt file (JSON lines)")
        p.add_argument("--out", required=True)
        p.add_argument("--images-per-prompt", type=int, default=4)
        _sampling_args(p)
        p.set_defaults(func=cmd_bench_prompts)
    p = bsub.add_parser("imgedit", help="edits from ImgEdit's basic_edit.json")
    p.add_argument("--edits", required=True, help="basic_edit.json ({key: {id, prompt, edit_type}})")
    p.add_argument("--images", required=True, help="image root that the ids are relative to")
    p.add_argument("--out", required=True)
    _sampling_args(p, edit=True)
    p.set_defaults(func=cmd_bench_imgedit)
    p = bsub.add_parser("suite", help="write the ready Shapes suite (prompts, dense prompts, edits + truth)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--per-tag", type=int, default=10)
    p.add_argument("--dense", type=int, default=20)
    p.add_argument("--per-edit-type", type=int, default=10)
    p.add_argument("--truth", action="store_true", help="also write ground-truth outputs in the bench layouts")
    p.set_defaults(func=cmd_suite)

    score = sub.add_parser("score", help="score a bench folder exactly (Shapes world)",
                           description="Score outputs against the Shapes world; prints JSON, writes report.md + grid.png.")
    score.add_argument("kind", choices=("geneval", "dense", "imgedit"))
    score.add_argument("out", help="the bench output folder")
    score.add_argument("--edits", default=None, help="imgedit: basic_edit.json")
    score.add_argument("--images", default=None, help="imgedit: image root of the sources")
    score.add_argument("--truth", default=None, help="imgedit: truth.json written with the suite")
    score.add_argument("--min-psnr", type=float, default=25.0, help="imgedit: preservation needed for success (dB)")
    score.add_argument("--report", default=None, help="folder for report.md and grid.png (default: the output folder)")
    score.set_defaults(func=cmd_score)

    p = sub.add_parser("evaluate", help="bench + score a model on the ready suite",
                       description="Sample the ready suite (ShapeEval, DenseEval, EditEval) and score it: summary.json.")
    p.add_argument("--out", required=True)
    p.add_argument("--suite", default=None, help="an existing suite folder (default: build one from --seed)")
    p.add_argument("--images-per-prompt", type=int, default=4)
    p.add_argument("--min-psnr", type=float, default=25.0)
    p.add_argument("--runtime", default="pytorch", choices=RUNTIMES,
                   help="score the model as it runs in PyTorch (default), quantised W8A8 (torchao), compiled "
                        "by torch.compile (inductor-int8: the fastest path of `dreamlite speed`), or exported "
                        "(onnxruntime / ExecuTorch, fp32 or int8 U-Net; text embeddings from PyTorch)")
    p.add_argument("--export-dir", default=None, help="quantised or exported model folder (default: OUT/RUNTIME; "
                                                      "reused when it exists)")
    _sampling_args(p, edit=True, shard=False)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="two evaluations of one suite, image by image (sign test)",
                       description="Paired comparison of two `dreamlite evaluate` runs on the same suite and seeds: "
                                   "the images exactly one of them gets right, with the exact sign-test p-value.")
    p.add_argument("a", help="LABEL=DIR[,DIR...]: the reference, one evaluate folder per sampling seed")
    p.add_argument("b", help="LABEL=DIR[,DIR...]: the candidate, the same seeds in the same order")
    p.add_argument("--json", default=None, help="also write the counts here")
    p.set_defaults(func=cmd_compare)
