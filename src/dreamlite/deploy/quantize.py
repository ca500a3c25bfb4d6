"""`dreamlite quantize`: a W8A8 U-Net for the PyTorch path, with static activation scales.

torchao's `Int8StaticActivationInt8WeightConfig` (per-row = per-output-channel int8 weights, one static
int8 scale per layer input, measured on Shapes calibration inputs) on every Linear layer that calibration
reaches; torchao int4 does not run on this CPU, and ONNX / ExecuTorch int8 are the export paths
(`dreamlite export ... --quantize int8`). The quantised weights are written with torchao's safetensors
support (tensor metadata as JSON, no pickle) and loaded with `load_quantized`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil

import torch

from ..errors import DreamLiteError

QUANT_FILE = "unet_w8a8.safetensors"
QUANT_INFO = "quantization.json"


@torch.no_grad()
def quantize_unet_w8a8(unet, batches) -> int:
    """Calibrate and quantise `unet` in place from UNetStep input tuples; returns the number of layers."""
    from torchao.quantization import Int8StaticActivationInt8WeightConfig, PerRow, PerTensor, quantize_

    from .graph import UNetStep

    observed: dict[torch.nn.Linear, list] = {}

    def hook(module, args):
        x = args[0]
        amax = float(x.detach().abs().amax())
        old = observed.get(module)
        observed[module] = [max(amax, old[0]) if old else amax, x.ndim]

    handles = [m.register_forward_pre_hook(hook) for m in unet.modules() if isinstance(m, torch.nn.Linear)]
    step = UNetStep(unet).eval()
    try:
        for inputs in batches:
            step(*inputs)
    finally:
        for h in handles:
            h.remove()
    if not observed:
        raise DreamLiteError("calibration reached no Linear layer of the U-Net")
    for module, (amax, ndim) in observed.items():
        scale = torch.tensor(max(amax, 1e-8) / 127.0).reshape([1] * ndim)
        quantize_(module, Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=[PerTensor(), PerRow()]))
    return len(observed)


def quantize_model(model: str | None, out: str, calibration_samples: int = 8, size: int | None = None,
                   text_len: int = 64, log=print) -> str:
    """Load `model`, quantise its U-Net (W8A8 static) and write a model folder that `load_quantized` reads."""
    from safetensors.torch import save_file
    from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

    from ..pipeline import DreamLitePipeline
    from .calibration import calibration_batches

    pipe = DreamLitePipeline.from_pretrained(model)
    size = size or pipe.default_resolution
    batches = [b["unet"] for b in calibration_batches(pipe, calibration_samples, size, size, text_len)]
    float_unet = copy.deepcopy(pipe.unet)
    layers = quantize_unet_w8a8(pipe.unet, batches)
    if os.path.exists(out):
        shutil.rmtree(out)
    # diffusers writes the folder layout (model_index, configs); the int8 file then replaces the float weights.
    DreamLitePipeline(vae=pipe.vae, unet=float_unet, scheduler=pipe.scheduler, mode=pipe.config.mode,
                      text_encoder_name=pipe.config.text_encoder_name).save_pretrained(out)
    os.remove(os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"))
    tensors, metadata = flatten_tensor_state_dict(pipe.unet.state_dict())
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "unet", QUANT_FILE), metadata=metadata)
    with open(os.path.join(out, QUANT_INFO), "w") as f:
        json.dump({"unet": {"scheme": "w8a8-static", "library": "torchao", "layers": layers,
                            "calibration_samples": calibration_samples, "resolution": size}}, f, indent=2)
    log(f"quantised {layers} Linear layers of the U-Net (W8A8, static activation scales) -> {out}")
    return out


def load_quantized(path: str):
    """A DreamLitePipeline whose U-Net holds the int8 weights and scales of `dreamlite quantize`."""
    from diffusers import DreamLiteUNetModel
    from safetensors import safe_open
    from safetensors.torch import load_file
    from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

    from ..pipeline import DreamLitePipeline

    file = os.path.join(path, "unet", QUANT_FILE)
    if not os.path.isfile(file):
        raise DreamLiteError(f"not a quantised model folder (no unet/{QUANT_FILE}): {path}")
    with safe_open(file, "pt") as f:
        metadata = f.metadata()
    state, leftover = unflatten_tensor_state_dict(load_file(file), metadata)
    if leftover:
        raise DreamLiteError(f"{file} has {len(leftover)} tensors that belong to no weight")
    unet = DreamLiteUNetModel.from_config(DreamLiteUNetModel.load_config(os.path.join(path, "unet")))
    missing, unexpected = unet.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise DreamLiteError(f"{file} does not match the U-Net config ({len(missing)} missing, {len(unexpected)} unexpected)")
    return DreamLitePipeline.from_pretrained(path, unet=unet.eval())
