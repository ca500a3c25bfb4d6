"""The app's functions through Gradio's API (`gradio_client`), as the README shows, plus CLI wiring."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest


@pytest.fixture(scope="module")
def read(decode_image):
    def read(path):
        with open(path, "rb") as f:
            return decode_image(f.read())

    return read


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server[1], verbose=False)


def test_generate_returns_seeded_images_and_caches_the_prompt(client, app_server, read):
    engine = app_server[2]
    prompt = "a photo of two stars (api test)"
    calls = engine.encoder_calls
    gallery, status = client.predict(model=engine.default, prompt=prompt, width=64, height=48, steps=3, seed=11,
                                     num_images=2, api_name="/generate")
    assert [item["caption"] for item in gallery] == ["seed 11", "seed 12"]
    a, b = (read(item["image"]) for item in gallery)
    assert a.shape == b.shape == (48, 64, 3)
    assert np.abs(a.astype(int) - b).max() > 0, "different seeds gave identical images"
    assert engine.encoder_calls == calls + 1 and "encoded" in status

    # Same prompt again: the text encoder is skipped, and seed 12 alone reproduces the second image.
    gallery2, status2 = client.predict(model=engine.default, prompt=prompt, width=64, height=48, steps=3, seed=12,
                                       num_images=1, api_name="/generate")
    assert engine.encoder_calls == calls + 1 and "from the cache" in status2
    np.testing.assert_array_equal(read(gallery2[0]["image"]), b)


def test_edit_depends_on_the_source(client, app_server, shapes_png, tmp_path, read):
    from gradio_client import handle_file
    from PIL import Image

    engine = app_server[2]
    out = client.predict(model=engine.default, source=handle_file(shapes_png), instruction="make the red circle green",
                         steps=3, seed=5, api_name="/edit")
    edited = read(out)
    assert edited.shape == (128, 128, 3)
    flipped = tmp_path / "flipped.png"
    Image.open(shapes_png).transpose(Image.FLIP_LEFT_RIGHT).save(flipped)
    out2 = client.predict(model=engine.default, source=handle_file(str(flipped)),
                          instruction="make the red circle green", steps=3, seed=5, api_name="/edit")
    assert np.abs(read(out2).astype(int) - edited).max() > 0, "the edit ignored its source image"
    # Strength below 1 starts from the noised source: same seed, another result, and the progress total is the
    # number of steps actually run.
    totals = []
    partial, _ = engine.edit(Image.open(shapes_png), "make the red circle green", steps=3, seed=5, strength=0.5,
                             progress=lambda i, total: totals.append(total))
    assert np.abs(np.asarray(partial).astype(int) - edited).max() > 0
    assert totals and totals[0] == len(totals) < 3


def test_keep_outside_edits_through_the_estimated_mask(client, app_server, shapes_png, read):
    """The checkbox is the pipeline's mask_image="auto": the mask's extra U-Net calls, a direct call's image."""
    from gradio_client import handle_file
    from PIL import Image

    from dreamlite.pipeline import generators_from_seeds

    engine = app_server[2]
    source = Image.open(shapes_png).convert("RGB")
    calls = []  # U-Net evaluations per edit: estimating the mask adds its contrast predictions
    hook = engine.pipeline().unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        kept, _ = engine.edit(source, "make the red circle green", steps=3, seed=5, keep_outside=True)
        with_mask = len(calls)
        engine.edit(source, "make the red circle green", steps=3, seed=5)
        without = len(calls) - with_mask
    finally:
        hook.remove()
    assert with_mask > without > 0
    direct = engine.pipeline()("make the red circle green", image=source, num_inference_steps=3,
                               generator=generators_from_seeds([5]), mask_image="auto").images[0]
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(direct))
    out = client.predict(model=engine.default, source=handle_file(shapes_png), instruction="make the red circle green",
                         steps=3, seed=5, keep_outside=True, api_name="/edit")
    np.testing.assert_array_equal(read(out), np.asarray(kept))


@pytest.mark.parametrize("call, message", [
    (dict(api_name="/generate", prompt="   "), "the prompt is empty"),
    (dict(api_name="/generate", prompt="a red circle", width=4096), "width 4096 is too large"),
    (dict(api_name="/edit", source="notes.png", instruction="make it green"), "not an image file"),
    (dict(api_name="/edit", source="shapes", instruction=""), "the instruction is empty"),
    (dict(api_name="/edit", source="shapes", instruction="make it green", strength=0.0), "strength must be in (0, 1]"),
])
def test_bad_input_is_one_clear_message(client, app_server, shapes_png, tmp_path, call, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    if call.get("source") == "notes.png":
        (tmp_path / "notes.png").write_text("not a picture")
        call["source"] = handle_file(str(tmp_path / "notes.png"))
    elif call.get("source") == "shapes":
        call["source"] = handle_file(shapes_png)
    with pytest.raises(AppError) as info:
        client.predict(model=app_server[2].default, steps=2, **call)
    text = str(info.value)
    assert message in text and "Traceback" not in text
    assert "/tmp/gradio" not in text  # the user's file name, not the server's temp path


def test_concurrent_requests_queue_instead_of_overlapping(client, app_server, monkeypatch):
    from dreamlite.pipeline import DreamLitePipeline

    spans, lock = [], threading.Lock()
    original = DreamLitePipeline.__call__

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            with lock:
                spans.append((start, time.perf_counter()))

    monkeypatch.setattr(DreamLitePipeline, "__call__", timed)
    jobs = [client.submit(model=app_server[2].default, prompt=f"a photo of a circle, job {i}", width=64, height=64,
                          steps=4, seed=i, api_name="/generate") for i in range(3)]
    for job in jobs:
        job.result(timeout=120)
    assert len(spans) == 3
    spans.sort()
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False)), spans


def test_cli_defaults_and_bad_model(app_server, tmp_path, capsys):
    from dreamlite.cli import build_parser, main

    args = build_parser().parse_args(["app"])
    assert args.host == "127.0.0.1" and args.func.__module__ == "dreamlite.app.cli"
    assert app_server[0].analytics_enabled is False
    assert main(["app", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model")


def test_model_picker_lists_shipped_and_local_folders(model_dir, tmp_path):
    import shutil

    from dreamlite.app.engine import find_models
    from dreamlite.errors import DreamLiteError
    from dreamlite.models.registry import shipped_models

    shutil.copytree(model_dir, tmp_path / "runs" / "mine")
    (tmp_path / "runs" / "not-a-model").mkdir()
    choices = find_models(str(model_dir), [str(tmp_path / "runs")])
    assert choices == [*shipped_models(), str(model_dir), str(tmp_path / "runs" / "mine")]
    with pytest.raises(DreamLiteError, match="models folder not found"):
        find_models(None, [str(tmp_path / "nowhere")])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc", 2.5, None])
def test_form_numbers_must_be_whole(value):
    """NaN steps or a text seed from a raw API call is the user's mistake: one message, not a server error."""
    from dreamlite.app.engine import check_app_size, pick_seed, whole_number
    from dreamlite.errors import DreamLiteError

    with pytest.raises(DreamLiteError, match="must be a whole number"):
        whole_number(value, "number of steps")
    with pytest.raises(DreamLiteError, match="seed must be a whole number"):
        pick_seed(value, False) if value is not None else pick_seed("x", False)
    with pytest.raises(DreamLiteError, match="height in pixels must be a whole number"):
        check_app_size(value, 64, 512)
    assert whole_number(3.0, "seed") == 3 and check_app_size(64.0, 32, 512) == (64, 32)


def test_killed_app_removes_its_temporary_images(model_dir, tmp_path):
    """`kill` (SIGTERM) stops the app as Ctrl-C does: the folder of images it served is removed."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = os.path.join(os.path.dirname(sys.executable), "dreamlite")
    env = {**os.environ, "TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([exe, "app", "--model", str(model_dir), "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert app.poll() is None, app.stderr.read()
                time.sleep(0.5)
        assert [p for p in os.listdir(tmp_path) if p.startswith("dreamlite-app-")]
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=60)
    finally:
        app.kill()
    assert app.returncode == 0  # Gradio closes the server on the interrupt and returns
    assert not [p for p in os.listdir(tmp_path) if p.startswith("dreamlite-app-")]
