"""One app server per test session, on the shared random-weight `model_dir` (no shipped model needed)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "test-artifacts", "app")


@pytest.fixture(scope="session")
def app_server(model_dir):
    """(demo, url, engine): the real app, launched in a background thread on loopback."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from dreamlite.app.engine import Engine
    from dreamlite.app.ui import build_app, launch

    engine = Engine(str(model_dir), max_side=256)
    demo = build_app(engine)
    url = launch(demo, host="127.0.0.1", port=None, block=False)
    yield demo, url, engine
    demo.close()
    demo.version_store.cleanup()


@pytest.fixture(scope="session")
def artifacts_dir():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def shapes_png(tmp_path):
    """A real Shapes-world picture (red circle, blue square) to upload, 128 px."""
    from dreamlite.world.render import render
    from dreamlite.world.scene import Obj, Scene

    scene = Scene(128, "white", (Obj("circle", "red", 40, 64, 36), Obj("square", "blue", 92, 64, 34)))
    path = tmp_path / "shapes.png"
    Image.fromarray(render(scene)).save(path)
    return str(path)


def decode(data: bytes) -> np.ndarray:
    """Bytes -> RGB array; fails the test if they are not a complete image."""
    import io

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def decode_image():
    return decode
