"""`dreamlite quantize`: a W8A8 U-Net for the PyTorch path, with static activation scales.

torchao's `Int8StaticActivationInt8WeightConfig` (per-row = per-output-channel int8 weights, one static
int8 scale per layer input, measured on Shapes calibration inputs) on every Linear layer that calibration
reaches; torchao int4 does not run on this CPU, and ONNX / ExecuTorch int8 are the export paths
(`dreamlite export ... --quantize int8`). The quantised weights are written with torchao's safetensors
support (tensor metadata as JSON, no pickle) and loaded with `load_quantized`.

The text encoder is quantised weight-only with optimum-quanto (its QLinear runs on CPU and its state
serialises to safetensors): 4-bit group-wise (groups of 128 input channels) for Qwen3-VL, as the paper
deploys it, and int8 per-channel for the small MiniLM, whose 384-wide layers gain little from 4 bits.
"""

from __future__ import annotations

import copy
import json
import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..atomic import atomic_dir, check_replaceable
from ..errors import DreamLiteError

if TYPE_CHECKING:
    from ..pipeline import DreamLitePipeline

QUANT_FILE = "unet_w8a8.safetensors"
QUANT_INFO = "quantization.json"
TEXT_DIR = "text_encoder_quantized"  # not a diffusers component: `load_quantized` rebuilds it
TEXT_SCHEMES = ("int4", "int8")
DEFAULT_TEXT_SCHEME = {"qwen3_vl": "int4", "bert": "int8"}  # by transformers model type


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


def quantize_text_encoder(text_encoder, scheme: str) -> int:
    """Weight-only quantise every Linear layer of `text_encoder` in place; returns the number of layers.

    `lm_head` is left alone: DreamLite reads hidden states and never computes logits."""
    from optimum.quanto import freeze, qint4, qint8, quantize

    if scheme not in TEXT_SCHEMES:
        raise DreamLiteError(f"unknown text encoder scheme {scheme!r}; choose one of: {', '.join(TEXT_SCHEMES)}")
    quantize(text_encoder, weights={"int4": qint4, "int8": qint8}[scheme], exclude=["lm_head"])
    freeze(text_encoder)
    return sum(1 for m in text_encoder.modules() if type(m).__name__ == "QLinear")


def save_quantized_text_encoder(text_encoder, directory: str, tokenizer=None) -> None:
    """Config + quanto quantisation map + safetensors weights (tied copies stored once)."""
    from optimum.quanto import quantization_map
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    text_encoder.config.save_pretrained(directory)
    state, seen = {}, set()
    for name, tensor in text_encoder.state_dict().items():
        if tensor.data_ptr() in seen:  # a tied weight: `tie_weights` restores it
            continue
        seen.add(tensor.data_ptr())
        state[name] = tensor.contiguous()
    save_file(state, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "quanto_qmap.json"), "w") as f:
        json.dump({"class": type(text_encoder).__name__, "layers": quantization_map(text_encoder)}, f, indent=2)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)


def load_quantized_text_encoder(directory: str):
    """The quantised text encoder that `save_quantized_text_encoder` wrote (no float weights are read)."""
    import transformers
    from optimum.quanto import requantize
    from safetensors.torch import load_file

    with open(os.path.join(directory, "quanto_qmap.json")) as f:
        qmap = json.load(f)
    config = transformers.AutoConfig.from_pretrained(directory)
    model = getattr(transformers, qmap["class"])._from_config(config)
    requantize(model, load_file(os.path.join(directory, "model.safetensors")), qmap["layers"], torch.device("cpu"))
    model.tie_weights()
    return model.eval()


@torch.no_grad()
def text_encoder_agreement(reference, quantised, texts, task: str = "generate") -> float:
    """Mean cosine similarity of the per-token states of two encoders (same tokenizer) over `texts`."""
    a, mask = reference.encode(texts, task)
    b, _ = quantised.encode(texts, task)
    return token_state_cosine(a, b, mask)


def token_state_cosine(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean cosine similarity of two [B, L, D] state tensors over the unmasked tokens."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    return float((cos * mask).sum() / mask.sum())


def quantize_model(model: str | os.PathLike | DreamLitePipeline, out: str, calibration_samples: int = 8,
                   size: int | None = None, text_len: int = 64, text_encoder: str = "auto", log=print) -> str:
    """Load `model` (a folder or name; a loaded pipeline is left unchanged), quantise its U-Net (W8A8 static)
    and its text encoder (weight-only, `text_encoder`: auto | int4 | int8 | none) and write a model folder that
    `load_quantized` reads."""
    from safetensors.torch import save_file
    from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

    from ..pipeline import DreamLitePipeline, check_size
    from .calibration import calibration_batches

    if text_encoder not in ("auto", "none", *TEXT_SCHEMES):  # before the (slow) load and calibration
        raise DreamLiteError(f"unknown text encoder scheme {text_encoder!r}; choose auto, none, int4 or int8")
    if size is not None:
        check_size(size, size)
    check_replaceable(out, QUANT_INFO)
    if isinstance(model, DreamLitePipeline):  # copy what is quantised in place
        copied = {"unet": copy.deepcopy(model.unet)}
        if text_encoder != "none" and model.text_encoder is not None:
            copied["text_encoder"] = copy.deepcopy(model.text_encoder)
        pipe = DreamLitePipeline(**{**model.components, **copied}, mode=model.config.mode,
                                 text_encoder_name=model.config.text_encoder_name, **model.sampling_defaults)
    else:
        pipe = DreamLitePipeline.from_pretrained(model)
    size = pipe.default_resolution if size is None else size
    batches = [b["unet"] for b in calibration_batches(pipe, calibration_samples, size, size, text_len)]
    float_unet = copy.deepcopy(pipe.unet)
    layers = quantize_unet_w8a8(pipe.unet, batches)
    with atomic_dir(out) as folder:  # a failed or killed run leaves the previous folder, never half of a new one
        # diffusers writes the folder layout (model_index, configs); the int8 file then replaces the float weights.
        DreamLitePipeline(vae=pipe.vae, unet=float_unet, scheduler=pipe.scheduler, mode=pipe.config.mode,
                          text_encoder_name=pipe.config.text_encoder_name, **pipe.sampling_defaults).save_pretrained(folder)
        os.remove(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))
        tensors, metadata = flatten_tensor_state_dict(pipe.unet.state_dict())
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, "unet", QUANT_FILE),
                  metadata=metadata)
        info = {"unet": {"scheme": "w8a8-static", "library": "torchao", "layers": layers,
                         "calibration_samples": calibration_samples, "resolution": size}}
        log(f"quantised {layers} Linear layers of the U-Net (W8A8, static activation scales)")
        if text_encoder != "none" and pipe.text_encoder is not None:
            info["text_encoder"] = _quantize_pipeline_text_encoder(pipe, text_encoder, folder, log)
        with open(os.path.join(folder, QUANT_INFO), "w") as f:
            json.dump(info, f, indent=2)
    log(f"-> {out}")
    return out


def _quantize_pipeline_text_encoder(pipe, scheme: str, out: str, log) -> dict:
    from ..models.text_encoders import prompt_encoder_for
    from ..world.captions import CATEGORIES, generation_example

    model_type = pipe.text_encoder.config.model_type
    scheme = DEFAULT_TEXT_SCHEME.get(model_type, "int8") if scheme == "auto" else scheme
    encoder = prompt_encoder_for(pipe.text_encoder, pipe.tokenizer, pipe.processor)
    rng = np.random.default_rng(0)
    texts = [generation_example(rng, CATEGORIES[i % len(CATEGORIES)], pipe.default_resolution)[0] for i in range(32)]
    reference, mask = encoder.encode(texts, "generate")  # float states first: no second copy of the encoder
    layers = quantize_text_encoder(pipe.text_encoder, scheme)  # in place, so `encoder` now runs quantised
    agreement = token_state_cosine(reference, encoder.encode(texts, "generate")[0], mask)
    save_quantized_text_encoder(pipe.text_encoder, os.path.join(out, TEXT_DIR), tokenizer=pipe.tokenizer)
    log(f"quantised {layers} Linear layers of the text encoder ({scheme} weight-only); "
        f"token-state cosine vs float on 32 world prompts: {agreement:.4f}")
    return {"scheme": scheme, "library": "optimum-quanto", "layers": layers, "model_type": model_type,
            "group_size": 128 if scheme == "int4" else None, "cosine_vs_float": round(agreement, 5)}


def load_quantized(path: str):
    """A DreamLitePipeline whose U-Net holds the int8 weights and scales of `dreamlite quantize`."""
    from diffusers import DreamLiteUNetModel
    from safetensors import safe_open
    from safetensors.torch import load_file
    from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

    from ..models.unet import unet_class
    from ..pipeline import DreamLitePipeline

    file = os.path.join(path, "unet", QUANT_FILE)
    if not os.path.isfile(file):
        raise DreamLiteError(f"not a quantised model folder (no unet/{QUANT_FILE}): {path}")
    with safe_open(file, "pt") as f:
        metadata = f.metadata()
    state, leftover = unflatten_tensor_state_dict(load_file(file), metadata)
    if leftover:
        raise DreamLiteError(f"{file} has {len(leftover)} tensors that belong to no weight")
    config = DreamLiteUNetModel.load_config(os.path.join(path, "unet"))
    unet = unet_class(config).from_config(config)
    missing, unexpected = unet.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise DreamLiteError(f"{file} does not match the U-Net config ({len(missing)} missing, {len(unexpected)} unexpected)")
    extra = {}
    text_dir = os.path.join(path, TEXT_DIR)
    if os.path.isdir(text_dir):
        from transformers import AutoTokenizer

        extra["text_encoder"] = load_quantized_text_encoder(text_dir)
        extra["tokenizer"] = AutoTokenizer.from_pretrained(text_dir)
        if extra["text_encoder"].config.model_type == "qwen3_vl":
            from ..models.text_encoders import make_qwen3vl_processor

            extra["processor"] = make_qwen3vl_processor(extra["tokenizer"])
    return DreamLitePipeline.from_pretrained(path, unet=unet.eval(), **extra)
