"""The CLI end to end on a saved tiny model; every bad input is one line on stderr, exit 2, no output."""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from dreamlite.cli import main


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(argv, message, capsys, out_path):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not os.path.exists(out_path)
    assert not [f for f in os.listdir(os.path.dirname(out_path)) if f.startswith(".tmp-")]


def _png_with_size(width, height) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def images(tmp_path):
    rgb = Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8))
    buf = io.BytesIO()
    rgb.save(buf, "PNG")
    png = buf.getvalue()
    buf = io.BytesIO()
    rgb.save(buf, "JPEG")
    jpg = buf.getvalue()
    paths = {"good": tmp_path / "good.png", "text": tmp_path / "notes.png", "trunc_png": tmp_path / "t.png",
             "trunc_jpg": tmp_path / "t.jpg", "zero": tmp_path / "zero.png", "empty": tmp_path / "empty.png"}
    rgb.save(paths["good"])
    paths["text"].write_text("this is not an image")
    paths["trunc_png"].write_bytes(png[: len(png) // 2])
    paths["trunc_jpg"].write_bytes(jpg[: len(jpg) // 2])
    paths["zero"].write_bytes(_png_with_size(0, 0))
    paths["empty"].write_bytes(b"")
    return paths


def test_generate_edit_encode_info(model_dir, images, tmp_path, capsys):
    out = tmp_path / "out" / "x.png"
    code, stdout, _ = run(["generate", "a red circle", "-o", out, "--model", model_dir, "--steps", "2", "--height", "64",
                           "--width", "48", "--num-images", "2", "--seed", "7"], capsys)
    assert code == 0
    paths = [tmp_path / "out" / "x-0.png", tmp_path / "out" / "x-1.png"]
    assert stdout.split() == [str(p) for p in paths]
    assert Image.open(paths[0]).size == (48, 64)
    # Seeds are per image: the second image of a seed-7 run is the first image of a seed-8 run.
    code, _, _ = run(["generate", "a red circle", "-o", tmp_path / "y.png", "--model", model_dir, "--steps", "2",
                      "--height", "64", "--width", "48", "--seed", "8"], capsys)
    assert np.array_equal(np.asarray(Image.open(paths[1])), np.asarray(Image.open(tmp_path / "y.png")))

    code, _, _ = run(["edit", images["good"], "make it blue", "-o", tmp_path / "e.png", "--model", model_dir,
                      "--steps", "2", "--image-guidance", "1.2"], capsys)
    assert code == 0 and Image.open(tmp_path / "e.png").size == (64, 64)
    # --strength starts from the noised source: same seed, a different (source-anchored) result.
    code, _, _ = run(["edit", images["good"], "make it blue", "-o", tmp_path / "s.png", "--model", model_dir,
                      "--steps", "2", "--image-guidance", "1.2", "--strength", "0.5"], capsys)
    assert code == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "s.png")), np.asarray(Image.open(tmp_path / "e.png")))

    # --mask keeps the source outside a region: auto (estimated) or a mask image of the source's size.
    for mask in ("auto", images["good"]):
        code, _, _ = run(["edit", images["good"], "make it blue", "-o", tmp_path / "m.png", "--model", model_dir,
                          "--steps", "2", "--mask", mask], capsys)
        assert code == 0 and Image.open(tmp_path / "m.png").size == (64, 64)
    assert_user_error(["edit", images["good"], "make it blue", "-o", tmp_path / "n.png", "--model", model_dir,
                       "--mask", tmp_path / "no-mask.png"], "image not found", capsys, str(tmp_path / "n.png"))

    embeds = tmp_path / "emb.safetensors"
    assert run(["encode", "a red circle", "-o", embeds, "--model", model_dir], capsys)[0] == 0
    tensors = load_file(embeds)
    assert {"prompt_embeds", "prompt_embeds_mask", "negative_prompt_embeds", "negative_prompt_embeds_mask"} <= set(tensors)
    assert tensors["prompt_embeds"].shape[-1] == 384
    code, _, _ = run(["generate", "--embeds", embeds, "-o", tmp_path / "z.png", "--model", model_dir, "--steps", "2",
                      "--height", "64", "--width", "48", "--seed", "8"], capsys)
    assert code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "z.png")), np.asarray(Image.open(tmp_path / "y.png")))

    code, stdout, _ = run(["info", "--model", model_dir, "--json"], capsys)
    info = json.loads(stdout)
    assert code == 0 and info["text_encoder"] == "minilm" and info["unet_parameters"] > 0


@pytest.mark.parametrize("key,message", [
    ("missing", "image not found"),
    ("text", "not an image file"),
    ("trunc_png", "cannot read image"),
    ("trunc_jpg", "cannot read image"),
    ("zero", "image"),
    ("empty", "empty"),
])
def test_bad_source_images(key, message, images, model_dir, tmp_path, capsys):
    source = images.get(key, tmp_path / "does-not-exist.png")
    assert_user_error(["edit", source, "make it red", "-o", tmp_path / "o.png", "--model", model_dir], message, capsys,
                      str(tmp_path / "o.png"))


@pytest.mark.parametrize("extra,message", [
    (["--height", "100", "--width", "64"], "multiple of 16"),
    (["--height", "8192", "--width", "64"], "too large"),
    (["--height", "0", "--width", "64"], "multiple of 16"),
    (["--steps", "0"], "sampling steps"),  # not silently the default count
    (["--steps", "-3"], "sampling steps"),
    (["--noise-scale", "0"], "noise_scale must be a number in"),
    (["--guidance", "nan"], "guidance_scale must be a finite number >= 0"),  # sampled a black image before
    (["--guidance", "-5"], "guidance_scale must be a finite number >= 0"),
])
def test_bad_sizes_and_steps(extra, message, model_dir, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a red circle", "-o", out, "--model", model_dir, *extra], message, capsys, str(out))


@pytest.mark.parametrize("strength", ["0", "1.5"])
def test_bad_strength(strength, model_dir, images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert_user_error(["edit", images["good"], "make it red", "-o", out, "--model", model_dir, "--strength", strength],
                      "strength must be in (0, 1]", capsys, str(out))


def test_empty_prompts(model_dir, images, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert_user_error(["generate", "", "-o", out, "--model", model_dir], "prompt is empty", capsys, str(out))
    assert_user_error(["edit", images["good"], "  ", "-o", out, "--model", model_dir], "prompt is empty", capsys, str(out))
    emb = tmp_path / "e.safetensors"
    assert_user_error(["encode", "", "-o", emb, "--model", model_dir], "prompt is empty", capsys, str(emb))


def test_unknown_preset_and_model(tmp_path, capsys):
    out = tmp_path / "o.png"
    assert_user_error(["info", "--preset", "huge"], "unknown preset", capsys, str(out))
    assert_user_error(["generate", "a", "-o", out, "--model", "no-such-model"], "unknown model", capsys, str(out))
    (tmp_path / "notamodel").mkdir()
    assert_user_error(["generate", "a", "-o", out, "--model", tmp_path / "notamodel"], "no model_index.json", capsys, str(out))


def test_model_folder_with_missing_weights(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    os.remove(broken / "unet" / "diffusion_pytorch_model.safetensors")
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a", "-o", out, "--model", broken], "cannot load model", capsys, str(out))


def test_model_folder_with_mismatched_weights(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("conv_in.weight"))
    tensors[name] = tensors[name][:, :2].contiguous()  # wrong shape
    save_file(tensors, weights)
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a", "-o", out, "--model", broken], "cannot load model", capsys, str(out))


def test_pickled_weights_are_never_loaded(model_dir, tmp_path, capsys):
    broken = tmp_path / "pickled"
    shutil.copytree(model_dir, broken)
    os.remove(broken / "vae" / "diffusion_pytorch_model.safetensors")
    (broken / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded: would be unpickled")
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a", "-o", out, "--model", broken], "cannot load model", capsys, str(out))


def test_bad_output_and_embeddings(model_dir, tmp_path, capsys):
    out = tmp_path / "o.txt"
    assert_user_error(["generate", "a", "-o", out, "--model", model_dir], "output must be an image", capsys, str(out))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    out = tmp_path / "o.png"
    assert_user_error(["generate", "--embeds", bad, "-o", out, "--model", model_dir], "cannot read embeddings", capsys, str(out))


def test_unwritable_outputs_fail_before_sampling(model_dir, tmp_path, capsys):
    (tmp_path / "taken.png").mkdir()
    assert_user_error(["generate", "a", "-o", tmp_path / "taken.png", "--model", model_dir], "is a folder", capsys,
                      str(tmp_path / "missing.png"))
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "x.png"
    code, _, err = run(["generate", "a", "-o", out, "--model", model_dir], capsys)
    assert code == 2 and err.startswith("error: cannot write") and err.count("\n") == 1, err


def test_corrupt_model_index_and_tiny_sources(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model_index.json").write_text("{not json")
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a", "-o", out, "--model", broken], "cannot read", capsys, str(out))
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 40)).save(small)
    assert_user_error(["edit", small, "make it red", "-o", out, "--model", model_dir, "--steps", "1"],
                      "editing needs at least 16 px per side", capsys, str(out))


def test_no_default_model_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from dreamlite.models import registry

    monkeypatch.setattr(registry, "SHIPPED_DIR", str(tmp_path / "none"))
    out = tmp_path / "o.png"
    assert_user_error(["generate", "a red circle", "-o", out], "no default model is installed", capsys, str(out))


def test_console_script_help_and_exit_code(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "dreamlite")
    for command in ["generate", "edit", "encode", "info"]:
        result = subprocess.run([exe, command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: dreamlite" in result.stdout
    result = subprocess.run([exe, "info", "--preset", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == "error: unknown preset 'nope'; choose one of: paper, tiny"
