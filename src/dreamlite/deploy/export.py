"""`dreamlite export onnx|executorch|coreml`: the U-Net, VAE encoder and VAE decoder as static-shape graphs.

Every export is checked against PyTorch on the same inputs before it is accepted: the parity report is
printed, and an export beyond tolerance raises (the folder then has no `deploy.json`, so no runner loads
it). Graphs take the 2x-wide canvas of the chosen resolution, one prompt (batch 1: the few-step mobile
sampler; guidance runs the graph once per branch) and a fixed number of text tokens (padding masked).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import time
import warnings

import numpy as np
import torch

from ..atomic import atomic_dir, check_replaceable, write_text_atomic
from ..errors import DreamLiteError
from .graph import GRAPH_INPUTS, GRAPH_OUTPUTS, example_inputs, graph_modules, use_explicit_attention

EXPORT_TARGETS = ("onnx", "executorch", "coreml")
QUANTIZATIONS = (None, "int8")
MANIFEST = "deploy.json"
FILES = {"onnx": "{}.onnx", "executorch": "{}.pte", "coreml": "{}.mlpackage"}
# Relative RMS error of each graph's output against eager PyTorch fp32.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 0.15}
ONNX_OPSET = 17


def check_combination(runtime: str, quantize: str | None):
    """One-line reasons for what a backend cannot do, before any slow work."""
    if runtime not in EXPORT_TARGETS:
        raise DreamLiteError(f"unknown runtime {runtime!r}; choose one of: {', '.join(EXPORT_TARGETS)}")
    if quantize not in QUANTIZATIONS:
        raise DreamLiteError(f"unknown quantisation {quantize!r}; the exporters support: int8")
    if runtime == "coreml" and quantize == "int8":
        raise DreamLiteError("Core ML int8 (W8A8) needs activation calibration through Core ML prediction, which runs "
                             "only on macOS; export fp16 here and quantise on a Mac with coremltools")
    _require(runtime)


def _require(runtime: str):
    module = {"onnx": "onnxruntime", "executorch": "executorch.runtime", "coreml": "coremltools"}[runtime]
    try:
        __import__(module)
    except ImportError:
        raise DreamLiteError(f"{runtime} export needs the `{module.split('.')[0]}` package: pip install 'dreamlite[deploy]'") from None


# ------------------------------------------------------------------------------------------- parity
def parity(reference: np.ndarray, output: np.ndarray) -> dict:
    reference, output = np.asarray(reference, np.float64), np.asarray(output, np.float64)
    if reference.shape != output.shape:
        raise DreamLiteError(f"exported graph returned shape {output.shape}, PyTorch {reference.shape}")
    diff = output - reference
    rms_ref = float(np.sqrt(np.mean(reference**2))) or 1.0
    return {"max_abs": float(np.abs(diff).max()), "rel_rms": float(np.sqrt(np.mean(diff**2)) / rms_ref)}


def format_report(rows: list[dict]) -> str:
    lines = [f"{'graph':<12} {'backend':<22} {'max abs err':>12} {'rel RMS err':>12} {'tolerance':>10}  ok"]
    for r in rows:
        lines.append(f"{r['graph']:<12} {r['backend']:<22} {r['max_abs']:>12.3g} {r['rel_rms']:>12.3g} "
                     f"{r['tolerance']:>10.3g}  {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- backends
@contextlib.contextmanager
def _quiet():
    """Exporters print pages of advisories; the report is what the user needs."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _export_onnx(module, inputs, name, path):
    # TorchScript exporter: on the tiny U-Net it exported 6x faster than the dynamo exporter (40 s vs
    # 227 s on the reference laptop) with the same parity; both give standard opset-17 graphs.
    # no_grad: tracing with autograd on keeps every activation for a backward that never comes; for the
    # paper U-Net at 1024 px that passed 24 GB and the export was killed.
    with _quiet(), torch.no_grad():
        torch.onnx.export(module, inputs, path, input_names=GRAPH_INPUTS[name], output_names=GRAPH_OUTPUTS[name],
                          opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True)


# Only the GEMM-like ops are quantised (W8A8 as in the paper); elementwise ops stay float, and calibration
# records just these ops' inputs.
ONNX_INT8_OPS = ["Conv", "MatMul", "Gemm"]


def _quantize_onnx(fp32_path, out_path, name, calibration=None, ranges=None):
    """Static W8A8 (QDQ, per-channel weights), activation ranges from the calibration batches.

    `ranges` is an onnxruntime calibration cache (JSON): written when calibrating, read instead of calibrating
    when no batches are given. Calibrating the paper U-Net at 1024 px in onnxruntime needs more than 24 GB, so
    `onnx_activation_ranges` measures the ranges on a smaller export of the same module (same tensor names)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration is None and not (ranges and os.path.isfile(ranges)):
        raise ValueError("int8 quantisation needs calibration batches or an existing ranges file")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{k: t.numpy() for k, t in zip(GRAPH_INPUTS[name], batch[name])} for batch in calibration])

        def get_next(self):
            return next(self.items, None)

    large = os.path.getsize(fp32_path) > 2**30  # protobuf's 2 GB limit: keep big weights in a side file
    source = fp32_path
    with _quiet():
        if not large:  # optional clean-up (shape inference, fusions); skipped for big graphs, whose weights it copies
            source = out_path + ".pre.onnx"
            quant_pre_process(fp32_path, source, skip_symbolic_shape=True)
        quantize_static(source, out_path, None if calibration is None else Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=ONNX_INT8_OPS, use_external_data_format=large,
                        extra_options={"ActivationSymmetric": True}, calibration_cache_path=ranges)
    if source != fp32_path:
        os.remove(source)


def onnx_activation_ranges(module, calibration: list[dict], name: str, ranges_path: str) -> str:
    """Calibrate `module` exported at the calibration batches' size (smaller than the target's); write the
    activation ranges to `ranges_path` for `_quantize_onnx(..., ranges=ranges_path)` of the full-size graph."""
    small = ranges_path + ".onnx"
    if os.path.exists(ranges_path):  # an existing cache would be read back instead of calibrating
        os.remove(ranges_path)
    _export_onnx(module, tuple(calibration[0][name]), name, small)
    _quantize_onnx(small, small + ".int8.onnx", name, calibration=calibration, ranges=ranges_path)
    for leftover in (small, small + ".int8.onnx"):
        os.remove(leftover)
    return ranges_path


class OnnxGraph:
    def __init__(self, path: str, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {n: np.ascontiguousarray(x, np.float32) for n, x in zip(self.names, inputs)})[0]


def _export_executorch(module, inputs, name, path, calibration=None):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with _quiet():
        program = torch.export.export(module, inputs, strict=False)
        if calibration is not None:
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

            # Linear and conv layers only: the global config also quantises other ops, and on the shipped U-Net
            # that raised the relative error on real inputs from 0.01-0.04 to 0.14-0.51.
            config, aten = get_symmetric_quantization_config(is_per_channel=True), torch.ops.aten
            quantizer = (XNNPACKQuantizer().set_operator_type(aten.linear.default, config)
                         .set_operator_type(aten.conv2d.default, config))
            prepared = prepare_pt2e(program.module(), quantizer)
            for batch in calibration:
                prepared(*batch[name])
            program = torch.export.export(convert_pt2e(prepared), inputs, strict=False)
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    with open(path, "wb") as f:
        f.write(lowered.buffer)


class ExecuTorchGraph:
    def __init__(self, path: str):
        from executorch.runtime import Runtime

        self.method = Runtime.get().load_program(path).load_method("forward")

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        # The runtime's Python binding exchanges tensors; the graph itself runs in the C++ runtime.
        out = self.method.execute([torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in inputs])[0]
        return out.numpy()


def _export_coreml(module, inputs, name, path):
    import coremltools as ct

    with _quiet():
        program = torch.export.export(module, inputs, strict=False).run_decompositions({})
        model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                           compute_precision=ct.precision.FLOAT16, inputs=[
                               ct.TensorType(name=n, shape=tuple(x.shape)) for n, x in zip(GRAPH_INPUTS[name], inputs)])
    model.save(path)
    return program


def load_graph(runtime: str, path: str):
    """A callable numpy -> numpy for one exported graph."""
    if runtime == "onnx":
        return OnnxGraph(path)
    if runtime == "executorch":
        return ExecuTorchGraph(path)
    if runtime == "coreml":
        import coremltools as ct

        raise DreamLiteError(f"Core ML prediction runs only on macOS (coremltools {ct.__version__} on "
                             f"{os.uname().sysname}); copy {path} to a Mac or iPhone")
    raise DreamLiteError(f"unknown runtime {runtime!r}")


# ------------------------------------------------------------------------------------------- export
def check_export(runtime: str, quantize: str | None, out: str, height: int | None = None, width: int | None = None,
                 text_len: int = 64, calibration_samples: int = 8):
    """What an export asks for, checked before any model is loaded or graph traced (None: the model's size)."""
    from ..pipeline import check_size

    check_size(16 if height is None else height, 16 if width is None else width)  # 16: any valid side
    if text_len < 1:
        raise DreamLiteError(f"--text-len must be positive, got {text_len}")
    if quantize == "int8" and calibration_samples < 1:
        raise DreamLiteError(f"an int8 export calibrates on at least 1 sample, got {calibration_samples}")
    check_replaceable(out, MANIFEST)
    check_combination(runtime, quantize)  # last: it imports the runtime's library


def export_pipeline(pipe, runtime: str, out: str, quantize: str | None = None, height: int | None = None,
                    width: int | None = None, text_len: int = 64, calibration_samples: int = 8,
                    expand_kv: bool | None = None, log=print) -> dict:
    """Export `pipe`'s U-Net, VAE encoder and decoder for `runtime` into the folder `out` (new, empty, or an
    earlier export, which is replaced only once this one has passed parity); returns the manifest."""
    height = pipe.default_resolution if height is None else height
    width = pipe.default_resolution if width is None else width
    check_export(runtime, quantize, out, height, width, text_len, calibration_samples)
    with atomic_dir(out) as folder:  # a failed or killed export leaves the previous one, and no temporary graphs
        manifest = _export_into(pipe, runtime, folder, quantize, height, width, text_len, calibration_samples,
                                expand_kv, log)
    return manifest


def _export_into(pipe, runtime, out, quantize, height, width, text_len, calibration_samples, expand_kv, log) -> dict:
    """The export itself, into a fresh folder: graphs, parity against PyTorch, then the manifest."""
    manifest_path = os.path.join(out, MANIFEST)
    unet = copy.deepcopy(pipe.unet).float().eval()
    vae = copy.deepcopy(pipe.vae).float().eval()
    reference = graph_modules(copy.deepcopy(unet), vae)  # diffusers' own attention: the reference
    use_explicit_attention(unet, expand_kv=runtime == "coreml" if expand_kv is None else expand_kv)
    modules = graph_modules(unet, vae)
    inputs = example_inputs(unet, vae, height, width, text_len)
    calibration = None
    if quantize == "int8":
        from .calibration import calibration_batches

        started = time.perf_counter()
        calibration = list(calibration_batches(pipe, calibration_samples, height, width, text_len))
        log(f"calibration: {len(calibration)} Shapes samples ({time.perf_counter() - started:.1f} s)")

    rows, files = [], {}
    for name, module in modules.items():
        started = time.perf_counter()
        path = os.path.join(out, FILES[runtime].format(name))
        quantized = quantize == "int8" and name == "unet"  # the VAE stays float: tiny, and quality-critical
        precision = "int8" if quantized else ("fp16" if runtime == "coreml" else "fp32")
        with torch.no_grad():
            expected = reference[name](*inputs[name]).numpy()
        if runtime == "onnx":
            if quantized:
                fp32_path = path + ".fp32.onnx"
                _export_onnx(module, inputs[name], name, fp32_path)
                _quantize_onnx(fp32_path, path, name, calibration)
                os.remove(fp32_path)
            else:
                _export_onnx(module, inputs[name], name, path)
            got, backend = OnnxGraph(path)(*[x.numpy() for x in inputs[name]]), "onnxruntime CPU"
        elif runtime == "executorch":
            _export_executorch(module, inputs[name], name, path, calibration if quantized else None)
            got, backend = ExecuTorchGraph(path)(*[x.numpy() for x in inputs[name]]), "executorch XNNPACK"
        else:
            if os.path.exists(path):
                shutil.rmtree(path)
            program = _export_coreml(module, inputs[name], name, path)
            # Prediction is macOS-only: check the exact graph Core ML converted, run in fp16 as Core ML does.
            with torch.no_grad():
                got = _fp16_run(program.module(), inputs[name])
            backend = "exported graph, fp16 (no Core ML prediction off macOS)"
        row = {"graph": name, "backend": backend, "precision": precision, **parity(expected, got),
               "tolerance": TOLERANCE[precision], "seconds": round(time.perf_counter() - started, 2)}
        row["ok"] = row["rel_rms"] <= row["tolerance"]
        rows.append(row)
        files[name] = os.path.basename(path)
    log(f"parity vs PyTorch eager fp32 ({runtime}{', int8 U-Net' if quantize else ''}, {height}x{width}):")
    log(format_report(rows))
    failed = [r for r in rows if not r["ok"]]
    if failed:
        r = failed[0]
        raise DreamLiteError(f"{runtime} export failed parity: {r['graph']} relative RMS error {r['rel_rms']:.3g} > "
                             f"{r['tolerance']:.3g}")
    manifest = {
        "runtime": runtime, "quantize": quantize, "files": files, "height": height, "width": width,
        "vae_scale_factor": pipe.vae_scale_factor, "latent_channels": pipe.unet.config.in_channels,
        "text_len": text_len, "text_dim": pipe.unet.config.encoder_hid_dim or pipe.unet.config.cross_attention_dim,
        "mode": pipe.config.mode, "guidance_scale": pipe.default_guidance,
        "image_guidance_scale": pipe.default_image_guidance, "guidance_max_sigma": pipe.resolve_max_sigma(),
        "noise_scale": pipe.resolve_noise_scale(),
        "scheduler": {k: v for k, v in dict(pipe.scheduler.config).items()
                                                if isinstance(v, (int, float, str, bool, type(None)))},
        "parity": rows,
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2))
    return manifest


def _fp16_run(module, inputs):
    """Run an exported graph with every weight, input and op in fp16, as Core ML's FLOAT16 precision computes it.
    The trace keeps float32 where it was fixed at export time (dtype arguments such as the time embedding's
    arange, and `_assert_tensor_metadata` checks on the inputs); Core ML computes those in fp16 too."""
    module = copy.deepcopy(module).half()
    for node in list(module.graph.nodes):
        if node.target is torch.ops.aten._assert_tensor_metadata.default:
            module.graph.erase_node(node)
        elif node.kwargs.get("dtype") is torch.float32:
            node.kwargs = {**node.kwargs, "dtype": torch.float16}
    module.recompile()
    return module(*[x.half() for x in inputs]).float().numpy()
