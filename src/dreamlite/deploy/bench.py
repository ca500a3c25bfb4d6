"""`dreamlite speed`: every CPU path of the U-Net side by side, in one run, as ratios to diffusers' eager fp32.

Each path runs in its own subprocess (`python -m dreamlite.deploy.bench --worker PATH`), so its peak
resident memory is its own and one path's caches or threads cannot speed up or slow down another. Times
are medians of `--runs` forwards after one warm-up. FLOPs are counted once (torch's FlopCounterMode on the
reference U-Net on the meta device) and divided by each path's time: achieved GFLOP/s, against the measured
matmul peaks. The end-to-end and architecture sections are in `bench_models`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from ..machine import measurement_stamp
from .bench_models import ARCHITECTURES, E2E_PATHS, architecture_cost

PATHS = ("diffusers-fp32", "explicit-attention-fp32", "bf16", "compiled-fp32", "compiled-bf16", "compiled-int8-bf16",
         "onnxruntime-fp32", "onnxruntime-int8", "executorch-fp32", "executorch-int8")
# ExecuTorch's XNNPACK lowering of the paper U-Net takes hours here, so its paths run only on request.
DEFAULT_PATHS = tuple(p for p in PATHS if not p.startswith("executorch"))
TEXT_LEN = 64
SECTIONS = ("unet", "e2e", "arch")


def _setting(quick: bool) -> dict:
    return {"preset": "tiny", "size": 64} if quick else {"preset": "paper", "size": 1024}


# ------------------------------------------------------------------------------------------- workers
def _build(preset: str, size: int):
    import torch

    from ..models.presets import build_unet, build_vae
    from .graph import UNetStep, example_inputs

    torch.manual_seed(0)
    unet, vae = build_unet(preset).eval(), build_vae(preset).eval()
    inputs = example_inputs(unet, vae, size, size, TEXT_LEN)["unet"]
    return unet, vae, UNetStep(unet).eval(), inputs


def _time(fn, runs: int) -> list[float]:
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def worker(path: str, preset: str, size: int, runs: int) -> dict:
    import torch

    from .graph import use_explicit_attention

    unet, vae, step, inputs = _build(preset, size)
    result = {"path": path}
    if path != "diffusers-fp32":
        use_explicit_attention(unet)
    if path in ("diffusers-fp32", "explicit-attention-fp32"):
        fn = lambda: step(*inputs)  # noqa: E731
    elif path == "bf16":
        step = step.to(torch.bfloat16)
        bf = [x.to(torch.bfloat16) for x in inputs]
        fn = lambda: step(*bf)  # noqa: E731
    elif path == "compiled-fp32":
        compiled = torch.compile(step)
        fn = lambda: compiled(*inputs)  # noqa: E731
    elif path in ("compiled-bf16", "compiled-int8-bf16"):
        from .inductor import compile_step

        # int8 ranges from the timed inputs themselves: ranges do not change the kernels' speed
        run = compile_step(step, inputs, quantize=path == "compiled-int8-bf16")
        fn = lambda: run(*inputs)  # noqa: E731
    elif path.startswith("onnxruntime"):
        from .export import OnnxGraph, _export_onnx, _quantize_onnx, onnx_activation_ranges
        from .graph import example_inputs

        folder = tempfile.mkdtemp(prefix="dreamlite-speed-")
        model = os.path.join(folder, "unet.onnx")
        start = time.perf_counter()
        _export_onnx(step, inputs, "unet", model)
        if path.endswith("int8"):
            # Ranges from a quarter-size export of the same U-Net (calibrating at full size needs > 24 GB);
            # random inputs, as the ranges do not change the kernels' speed.
            small = max(32, size // 4)
            calibration = [{"unet": example_inputs(unet, vae, small, small, TEXT_LEN)["unet"]}]
            ranges = onnx_activation_ranges(step, calibration, "unet", os.path.join(folder, "ranges.json"))
            _quantize_onnx(model, model + ".int8.onnx", "unet", ranges=ranges)
            model = model + ".int8.onnx"
            result["int8_coverage"] = _qdq_coverage(model)
        result["prepare_s"] = round(time.perf_counter() - start, 1)
        graph = OnnxGraph(model)
        arrays = [x.numpy() for x in inputs]
        fn = lambda: graph(*arrays)  # noqa: E731
    elif path.startswith("executorch"):
        from .export import ExecuTorchGraph, _export_executorch

        folder = tempfile.mkdtemp(prefix="dreamlite-speed-")
        model = os.path.join(folder, "unet.pte")
        start = time.perf_counter()
        _export_executorch(step, inputs, "unet", model, [{"unet": inputs}] if path.endswith("int8") else None)
        result["prepare_s"] = round(time.perf_counter() - start, 1)
        graph = ExecuTorchGraph(model)
        arrays = [x.numpy() for x in inputs]
        fn = lambda: graph(*arrays)  # noqa: E731
    else:
        raise ValueError(f"unknown path {path}")
    with torch.no_grad():
        times = _time(fn, runs)
    result["times_s"] = [round(t, 4) for t in times]
    result["median_s"] = sorted(times)[len(times) // 2]
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _qdq_coverage(path: str) -> str:
    """'quantised / all' GEMM-like nodes: a GEMM counts when its activation input comes from a DequantizeLinear."""
    import onnx

    from .export import ONNX_INT8_OPS

    nodes = onnx.load(path, load_external_data=False).graph.node
    dequantized = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    gemms = [n for n in nodes if n.op_type in ONNX_INT8_OPS]
    return f"{sum(n.input[0] in dequantized for n in gemms)} / {len(gemms)}"


def matmul_peaks(n: int = 2048, runs: int = 5) -> dict:
    """Measured GEMM throughput of this CPU with torch's kernels (oneDNN/MKL): the practical ceiling."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    ai, bi = torch.randint(-128, 127, (n, n), dtype=torch.int8), torch.randint(-128, 127, (n, n), dtype=torch.int8)
    ops = 2 * n**3
    ab, bb = a.bfloat16(), b.bfloat16()
    out = {}
    for name, fn in (("fp32", lambda: a @ b), ("bf16", lambda: ab @ bb), ("int8", lambda: torch._int_mm(ai, bi))):
        t = sorted(_time(fn, runs))[runs // 2]
        out[name] = round(ops / t / 1e9, 1)
    return out


def run_worker(name: str, preset: str, size: int, runs: int) -> dict:
    """One measurement, by name: a U-Net path, `e2e:<path>` or `arch:<architecture>`."""
    from .bench_models import architecture_worker, e2e_worker

    if name.startswith("e2e:"):
        return e2e_worker(name[4:], preset, size, runs)
    if name.startswith("arch:"):
        return architecture_worker(name[5:], size, runs)
    return worker(name, preset, size, runs)


def _run_worker(path: str, setting: dict, runs: int) -> dict:
    cmd = [sys.executable, "-m", "dreamlite.deploy.bench", "--worker", path, "--preset", setting["preset"],
           "--size", str(setting["size"]), "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"path": path, "error": reason[:200]}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------------------------- report
def run(quick: bool = False, runs: int = 3, paths=None, sections=SECTIONS, log=print) -> dict:
    """The U-Net table, then (by `sections`) the end-to-end loop and the architecture table."""
    setting = _setting(quick)
    runs = 1 if quick else runs
    paths = list(paths or DEFAULT_PATHS)
    report = {**measurement_stamp(),
              "preset": setting["preset"], "resolution": setting["size"], "runs": runs}
    report["matmul_peak_gflops"] = matmul_peaks(512 if quick else 2048)
    log(f"matmul peak (GFLOP/s): {report['matmul_peak_gflops']}")
    rows = []
    for path in paths if "unet" in sections else ():
        row = _run_worker(path, setting, runs)
        log(f"  {path}: {row.get('median_s', row.get('error'))}")
        rows.append(row)
    report["model"] = {k: v for k, v in architecture_cost("dreamlite", setting["size"], setting["preset"]).items()
                       if k in ("flops", "params")}
    flops = report["model"]["flops"]
    reference = next((r for r in rows if r["path"] == "diffusers-fp32" and "median_s" in r), None)
    for r in rows:
        if "median_s" in r:
            if reference:
                r["speedup"] = round(reference["median_s"] / r["median_s"], 2)
            if flops:
                r["gflops_per_s"] = round(flops / r["median_s"] / 1e9, 1)
    report["unet"] = rows
    ok = [r for r in rows if "speedup" in r]
    if ok:
        best = max(ok, key=lambda r: r["speedup"])
        report["fastest"] = {"path": best["path"], "speedup": best["speedup"]}
    if "e2e" in sections:
        # --quick skips the int8 loop: its compilation alone takes a minute even on the tiny preset
        e2e_paths = [p for p in E2E_PATHS if not (quick and p == "project-int8")]
        report["e2e"] = [_run_worker(f"e2e:{p}", setting, runs) for p in e2e_paths]
        reference = report["e2e"][0]
        for r in report["e2e"]:
            for task in ("generate", "edit"):
                if f"{task}_s" in r and f"{task}_s" in reference:
                    r[f"{task}_speedup"] = round(reference[f"{task}_s"] / r[f"{task}_s"], 2)
            log(f"  e2e {r['path']}: {r.get('generate_s', r.get('error'))}")
    if "arch" in sections and not quick:  # SDXL alone needs ~10 GiB and a minute per forward
        report["arch"] = []
        for name in ARCHITECTURES:
            row = _run_worker(f"arch:{name}", setting, 1)
            if "median_s" in row:
                row.update(params_m=round(row["params"] / 1e6, 1), gflop=round(row["flops"] / 1e9, 1),
                           gflops_per_s=round(row["flops"] / row["median_s"] / 1e9, 1))
            log(f"  arch {name}: {row.get('median_s', row.get('error'))}")
            report["arch"].append(row)
    return report


def _cell(fmt: str, row: dict) -> str:
    try:
        return fmt.format(r=row)
    except KeyError:  # e.g. no speed-up when the reference path failed
        return "-"


def _table(rows: list[dict], key: str, columns: list[tuple[str, str]]) -> list[str]:
    """Fixed-width lines: header, then one row per result; `columns` are (header, format of the row dict).
    A failed measurement prints its one-line reason instead."""
    lines = [f"{key:<26}" + "".join(f" {header:>13}" for header, _ in columns)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r[key]:<26} failed: {r['error']}")
            continue
        cells = [_cell(fmt, r) for _, fmt in columns]
        lines.append(f"{r[key]:<26}" + "".join(f" {c:>13}" for c in cells))
    return lines


def format_report(report: dict) -> str:
    m = report["model"]
    size = f"{report['resolution']}x{report['resolution']}"
    lines = [f"dreamlite speed — {report['date']} — {report['machine']}"]
    if report["unet"]:
        lines += [f"U-Net forward, preset {report['preset']} at {size} ({(m['params'] or 0) / 1e6:.2f}M parameters, "
                  f"{(m['flops'] or 0) / 1e9:.1f} GFLOP), median of {report['runs']} run(s)", ""]
        lines += _table(report["unet"], "path", [
            ("median s", "{r[median_s]:.3f}"), ("vs diffusers", "{r[speedup]:.2f}x"),
            ("GFLOP/s", "{r[gflops_per_s]:.1f}"), ("peak RSS MiB", "{r[peak_rss_mib]:.0f}")])
    peaks = report["matmul_peak_gflops"]
    lines += ["", "matmul peak of this CPU (GFLOP/s, 2048^3 GEMM): " + ", ".join(f"{k} {v}" for k, v in peaks.items())]
    if "fastest" in report:
        lines.append(f"fastest path: {report['fastest']['path']} ({report['fastest']['speedup']}x diffusers eager fp32)")
    if report.get("e2e"):
        lines += ["", f"End to end, 4 steps at {size}, pre-computed text embeddings (median of {report['runs']}):", ""]
        lines += _table(report["e2e"], "path", [
            ("generate s", "{r[generate_s]:.2f}"), ("speed-up", "{r[generate_speedup]:.2f}x"),
            ("edit s", "{r[edit_s]:.2f}"), ("speed-up", "{r[edit_speedup]:.2f}x")])
    if report.get("arch"):
        lines += ["", f"Architectures at {size}, fp32 eager, one forward (random weights):", ""]
        lines += _table(report["arch"], "arch", [
            ("params M", "{r[params_m]:.1f}"), ("GFLOP", "{r[gflop]:.1f}"), ("latency s", "{r[median_s]:.2f}"),
            ("GFLOP/s", "{r[gflops_per_s]:.1f}")])
    return "\n".join(lines)


def main(args):
    paths = args.paths.split(",") if args.paths else None
    if paths:
        from ..errors import DreamLiteError

        unknown = [p for p in paths if p not in PATHS]
        if unknown:
            raise DreamLiteError(f"unknown speed path {unknown[0]!r}; choose from: {', '.join(PATHS)}")
    sections = tuple(args.sections.split(",")) if getattr(args, "sections", None) else SECTIONS
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        from ..errors import DreamLiteError

        raise DreamLiteError(f"unknown speed section {unknown[0]!r}; choose from: {', '.join(SECTIONS)}")
    report = run(quick=args.quick, runs=args.runs, paths=paths, sections=sections,
                 log=(lambda *a: None) if args.json else print)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    a = parser.parse_args()
    if a.worker == "peaks":
        print(json.dumps(matmul_peaks()))
    else:
        print(json.dumps(run_worker(a.worker, a.preset, a.size, a.runs)))
