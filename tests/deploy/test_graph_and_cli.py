"""Export-friendly attention, the numpy sampler's sigmas, command-line errors, the speed smoke test."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from dreamlite.cli import main
from dreamlite.deploy.flow import flow_sigmas
from dreamlite.deploy.graph import UNetStep, example_inputs, use_explicit_attention
from dreamlite.models.presets import build_scheduler
from dreamlite.models.vae import vae_scale_factor
from dreamlite.pipeline import calculate_shift


@pytest.mark.parametrize("expand_kv", [False, True])
def test_explicit_attention_matches_diffusers(minilm_parts, expand_kv):
    import copy

    unet = copy.deepcopy(minilm_parts["unet"])
    inputs = example_inputs(unet, minilm_parts["vae"], 32, 32, 12)["unet"]
    step = UNetStep(unet).eval()
    with torch.no_grad():
        want = step(*inputs)
        use_explicit_attention(unet, expand_kv=expand_kv)
        got = step(*inputs)
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"ExplicitAttnProcessor"}
    side = 32 // vae_scale_factor(minilm_parts["vae"])
    assert got.shape == (1, 4, side, side)  # the target (left) half of the side x 2*side canvas
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    inputs[3][:, :3] = 0  # masking tokens changes the output: the mask reaches the explicit attention
    with torch.no_grad():
        assert not torch.allclose(step(*inputs), got, atol=1e-4)


@pytest.mark.parametrize("steps,side", [(4, 4), (4, 128), (28, 64), (1, 8)])
def test_numpy_sigmas_equal_the_scheduler(steps, side):
    scheduler = build_scheduler("tiny")
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps), mu=calculate_shift(side * side // 4))
    sigmas = flow_sigmas(steps, side, side, dict(scheduler.config))
    assert np.array_equal(sigmas, scheduler.sigmas.numpy())
    assert np.array_equal(sigmas[:-1] * np.float32(1000), scheduler.timesteps.numpy())


def test_export_rejects_unsupported_combinations(capsys, model_dir, tmp_path):
    assert main(["export", "coreml", "--model", str(model_dir), "--out", str(tmp_path), "--quantize", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Core ML int8") and "macOS" in err and len(err.splitlines()) == 1
    assert main(["export", "onnx", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model")
    assert main(["export", "onnx", "--model", str(model_dir), "--out", str(tmp_path), "--height", "30"]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "deploy.json").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for argv in (["export", "onnx", "--model", str(model_dir), "--out", str(mine)],
                 ["quantize", "--model", str(model_dir), "--out", str(mine)],
                 ["export", "onnx", "--model", str(model_dir), "--out", str(tmp_path / "x"), "--quantize", "int8",
                  "--calibration-samples", "0"]):
        assert main(argv) == 2  # refused before any model loads: the user's folder is never deleted
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert os.listdir(mine) == ["keep.txt"] and not (tmp_path / "x").exists()


def test_speed_quick_smoke(capsys):
    assert main(["speed", "--quick", "--json", "--paths", "diffusers-fp32", "--sections", "unet,e2e"]) == 0
    report = json.loads(capsys.readouterr().out)
    # End to end: diffusers' DreamLiteMobilePipeline and ours, same weights, both tasks timed.
    assert [r["path"] for r in report["e2e"]] == ["diffusers-mobile", "project-bf16"]
    assert all(r["generate_s"] > 0 and r["edit_s"] > 0 for r in report["e2e"])
    assert report["e2e"][0]["generate_speedup"] == 1.0 and "arch" not in report  # quick mode skips SDXL
    (row,) = report["unet"]
    assert row["path"] == "diffusers-fp32" and row["speedup"] == 1.0
    assert row["median_s"] > 0 and row["peak_rss_mib"] > 50 and row["gflops_per_s"] > 0
    assert report["model"]["flops"] > 0 and report["matmul_peak_gflops"]["fp32"] > 0
    assert main(["speed", "--quick", "--paths", "nope"]) == 2
    assert main(["speed", "--quick", "--sections", "unet,gpu"]) == 2


def test_architecture_table_costs_match_published_sizes():
    """Counted on the meta device: the configs are the published ones (390M, 2.57B, 0.59B parameters)."""
    from dreamlite.deploy.bench_models import architecture_cost

    costs = {name: architecture_cost(name) for name in ("dreamlite", "sdxl", "sana-0.6b")}
    assert round(costs["dreamlite"]["params"] / 1e6) == 390
    assert round(costs["sdxl"]["params"] / 1e7) == 257
    assert round(costs["sana-0.6b"]["params"] / 1e7) == 59
    # DreamLite's 2x-wide canvas at 1024 costs less than SDXL's U-Net and more than SANA's 32x-compressed latent.
    assert costs["sana-0.6b"]["flops"] < costs["dreamlite"]["flops"] < costs["sdxl"]["flops"]


def test_quantize_w8a8_roundtrip(capsys, model_dir, tmp_path, minilm_pipe):
    from safetensors import safe_open

    from dreamlite.deploy.quantize import load_quantized
    from dreamlite.pipeline import generators_from_seeds

    out = tmp_path / "q"
    assert main(["quantize", "--model", str(model_dir), "--out", str(out), "--calibration-samples", "2",
                 "--size", "32", "--text-len", "48"]) == 0
    with safe_open(str(out / "unet" / "unet_w8a8.safetensors"), "pt") as f:
        int8 = [k for k in f.keys() if k.endswith("_weight_qdata")]
        assert int8 and all(f.get_tensor(k).dtype == torch.int8 for k in int8)
    pipe = load_quantized(str(out))
    assert type(pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_q.weight).__name__ == "Int8Tensor"
    kwargs = dict(prompt="a photo of a red circle", height=32, width=32, num_inference_steps=2, output_type="np")
    got = pipe(generator=generators_from_seeds([0]), **kwargs).images
    want = minilm_pipe(generator=generators_from_seeds([0]), **kwargs).images
    err = np.abs(got - want).mean()
    assert 0 < err < 0.05  # int8 changes the image, slightly
    # The MiniLM text encoder: int8 weight-only, close to float, rebuilt from the folder without float weights.
    assert type(pipe.text_encoder.encoder.layer[0].attention.self.query).__name__ == "QLinear"
    info = json.loads((out / "quantization.json").read_text())["text_encoder"]
    assert info["scheme"] == "int8" and info["layers"] > 30 and 0.99 < info["cosine_vs_float"] < 1.0


def test_w8a8_runtime_quantises_a_loaded_pipeline_without_changing_it(tmp_path, minilm_pipe):
    """`dreamlite evaluate --runtime w8a8` quantises the model it already loaded into the export folder."""
    from dreamlite.deploy.runtimes import runtime_pipeline

    def to_q(pipe):
        return pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_q.weight

    float_weight = to_q(minilm_pipe).detach().clone()
    pipe = runtime_pipeline(minilm_pipe, "w8a8", str(tmp_path / "w8a8"))
    assert type(to_q(pipe)).__name__ == "Int8Tensor"
    assert type(to_q(minilm_pipe)) is torch.nn.Parameter and torch.equal(to_q(minilm_pipe), float_weight)
    assert (tmp_path / "w8a8" / "unet" / "unet_w8a8.safetensors").is_file()


def test_text_encoder_int4_groupwise_roundtrip(tmp_path):
    """The Qwen3-VL path: 4-bit group-wise weights, packed two per byte, saved and reloaded exactly."""
    import copy

    from safetensors import safe_open

    from dreamlite.deploy.quantize import (
        load_quantized_text_encoder,
        quantize_text_encoder,
        save_quantized_text_encoder,
        text_encoder_agreement,
    )
    from dreamlite.errors import DreamLiteError
    from dreamlite.models.text_encoders import prompt_encoder_for, tiny_qwen3vl

    model, tokenizer, processor = tiny_qwen3vl(hidden_size=256)  # 256 inputs = two groups of 128
    reference = prompt_encoder_for(copy.deepcopy(model), tokenizer, processor)
    with pytest.raises(DreamLiteError, match="int3"):
        quantize_text_encoder(model, "int3")
    assert quantize_text_encoder(model, "int4") > 10
    quantised = prompt_encoder_for(model, tokenizer, processor)
    texts = ["a photo of a red circle", "two blue squares left of a green triangle"]
    assert 0.95 < text_encoder_agreement(reference, quantised, texts) < 1.0
    save_quantized_text_encoder(model, str(tmp_path / "te"))
    with safe_open(str(tmp_path / "te" / "model.safetensors"), "pt") as f:
        name = "model.language_model.layers.0.mlp.up_proj.weight._data._data"
        assert f.get_tensor(name).dtype == torch.uint8  # packed nibbles
        assert f.get_tensor(name).numel() == 512 * 256 // 2  # [512 x 256] weights, two 4-bit values per byte
        assert f.get_tensor("model.language_model.layers.0.mlp.up_proj.weight._scale").shape[0] == 2 * 512  # per group
    reloaded = prompt_encoder_for(load_quantized_text_encoder(str(tmp_path / "te")), tokenizer, processor)
    assert text_encoder_agreement(quantised, reloaded, texts) > 0.99999
