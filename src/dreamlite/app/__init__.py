"""The local web app (`dreamlite app`): Generate, multi-turn Edit, model picker, and the same functions as a
Gradio API. `engine` holds the behaviour (no web code); `ui` lays it out with Gradio's own components."""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"  # loopback: the app is for this machine unless the user says otherwise


def serve(model=None, host: str = DEFAULT_HOST, port: int | None = None, models_dirs=(), max_side=None,
          block: bool = True):
    """Build and launch the app; returns (demo, local_url). With block=False the server runs in a thread."""
    from .engine import DEFAULT_MAX_SIDE, Engine

    engine = Engine(model, models_dirs=models_dirs, max_side=max_side or DEFAULT_MAX_SIDE)
    engine.info()  # load the model now: a bad --model fails before the server starts
    from .ui import build_app, launch

    demo = build_app(engine)
    url = launch(demo, host=host, port=port, block=block)
    return demo, url
