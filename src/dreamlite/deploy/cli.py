"""`dreamlite quantize`, `dreamlite export` and `dreamlite speed` (registered into the main parser by `dreamlite.cli`).

The speed benchmark is its own top-level command, `dreamlite speed`, so that `dreamlite bench` stays free
for the evaluation suites.
"""

from __future__ import annotations

import argparse


def cmd_export(args):
    from ..pipeline import DreamLitePipeline
    from .export import check_export, export_pipeline

    quantize = None if args.quantize in (None, "none") else args.quantize
    check_export(args.runtime, quantize, args.out, args.height, args.width, args.text_len,
                 args.calibration_samples)  # before the (slow) model load
    pipe = DreamLitePipeline.from_pretrained(args.model)
    export_pipeline(pipe, args.runtime, args.out, quantize=quantize, height=args.height, width=args.width,
                    text_len=args.text_len, calibration_samples=args.calibration_samples)
    print(args.out)


def cmd_quantize(args):
    from .quantize import quantize_model

    quantize_model(args.model, args.out, calibration_samples=args.calibration_samples, size=args.size,
                   text_len=args.text_len, text_encoder=args.text_encoder)
    print(args.out)


def cmd_speed(args):
    from .bench import main as bench_main

    bench_main(args)


def register(sub: argparse._SubParsersAction):
    p = sub.add_parser("export", help="export U-Net and VAE graphs (ONNX, ExecuTorch, Core ML)",
                       description="Export the U-Net, VAE encoder and decoder at a static size; prints a parity report "
                                   "against PyTorch and fails beyond tolerance.")
    p.add_argument("runtime", choices=("onnx", "executorch", "coreml"))
    p.add_argument("--model", default=None, help="model folder or shipped name (default: the shipped default)")
    p.add_argument("--out", required=True, help="output folder (graphs + deploy.json)")
    p.add_argument("--quantize", choices=("none", "int8"), default=None,
                   help="int8: static W8A8 U-Net calibrated on Shapes samples (onnx, executorch)")
    p.add_argument("--height", type=int, default=None, help="image height (default: model resolution)")
    p.add_argument("--width", type=int, default=None, help="image width (default: model resolution)")
    p.add_argument("--text-len", type=int, default=64, help="static number of text tokens (padding is masked)")
    p.add_argument("--calibration-samples", type=int, default=8, help="Shapes samples for int8 calibration")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("quantize", help="W8A8 U-Net and weight-only text encoder for the PyTorch path",
                       description="Quantise the U-Net to int8 weights and activations, calibrated on Shapes samples; "
                                   "writes a model folder (safetensors) that dreamlite.deploy.quantize.load_quantized reads.")
    p.add_argument("--model", default=None, help="model folder or shipped name")
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--calibration-samples", type=int, default=8)
    p.add_argument("--size", type=int, default=None, help="calibration resolution (default: model resolution)")
    p.add_argument("--text-len", type=int, default=64)
    p.add_argument("--text-encoder", choices=("auto", "int4", "int8", "none"), default="auto",
                   help="weight-only text encoder quantisation (auto: int4 group-wise for Qwen3-VL, int8 for MiniLM)")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("speed", help="CPU speed benchmark of every deployment path",
                       description="The paper U-Net at 1024x1024 in every path, side by side, as ratios to diffusers' "
                                   "eager fp32 (medians; each path in its own process for peak memory).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quick", action="store_true", help="smoke test: small resolution, tiny preset, one run")
    p.add_argument("--runs", type=int, default=3, help="timed runs per path (median)")
    p.add_argument("--paths", default=None, help="comma-separated subset of U-Net paths")
    p.add_argument("--sections", default=None,
                   help="comma-separated subset of: unet (forward per path), e2e (4-step loop vs diffusers' "
                        "DreamLiteMobilePipeline), arch (DreamLite vs SDXL vs SANA-0.6B); default all")
    p.set_defaults(func=cmd_speed)
