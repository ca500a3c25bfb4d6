"""`dreamlite app`: registered by the main CLI; gradio is imported only when the command runs."""

from __future__ import annotations

import argparse
import signal

from ..errors import DreamLiteError


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_app(args):
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise DreamLiteError("the web app needs gradio: pip install 'dreamlite[app]'") from None
    from . import serve

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the app as Ctrl-C does, so its temp images go too
    serve(args.model, host=args.host, port=args.port, models_dirs=args.models_dir, max_side=args.max_side)


def register(subparsers):
    from . import DEFAULT_HOST

    p = subparsers.add_parser("app", help="local web app (Gradio) to generate and edit",
                              description="Start a local Gradio app to generate and edit images, "
                                          "also reachable with gradio_client.")
    p.add_argument("--model", default=None, help="model folder or shipped model name (default: the shipped default)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=_port, default=None, help="port (default: 7860, or the next free one)")
    p.add_argument("--models-dir", action="append", default=[], metavar="DIR",
                   help="also offer every model folder inside DIR in the model picker (repeatable)")
    p.add_argument("--max-side", type=int, default=None, help="largest image side the app accepts (default 1024)")
    p.set_defaults(func=cmd_app)
