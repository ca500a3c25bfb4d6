"""Export-friendly attention, the numpy sampler's sigmas, command-line errors, the speed smoke test."""

from __future__ import annotations

import json

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


def test_speed_quick_smoke(capsys):
    assert main(["speed", "--quick", "--json", "--paths", "diffusers-fp32"]) == 0  # one subprocess: keep CI fast
    report = json.loads(capsys.readouterr().out)
    (row,) = report["unet"]
    assert row["path"] == "diffusers-fp32" and row["speedup"] == 1.0
    assert row["median_s"] > 0 and row["peak_rss_mib"] > 50 and row["gflops_per_s"] > 0
    assert report["model"]["flops"] > 0 and report["matmul_peak_gflops"]["fp32"] > 0
    assert main(["speed", "--quick", "--paths", "nope"]) == 2


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
