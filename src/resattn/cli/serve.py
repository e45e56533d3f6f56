"""`resattn serve [MODEL ...]`: the attention explorer in the browser (Gradio, local only)."""

from __future__ import annotations

import argparse
import logging
import os

from ..errors import UserError
from .common import DEFAULT_MODEL, add_device_arg


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Start a local web page: drop an image (or pick a CIFAR-10 "
                                   "test image), see the top-5 and every attention module's "
                                   "soft mask, step through modules and channels; several "
                                   "models side by side. Needs pip install 'resattn[serve]'.")
    p.add_argument("models", nargs="*", default=[DEFAULT_MODEL], metavar="MODEL",
                   help=f"tags, runs, checkpoints or weights folders (default: {DEFAULT_MODEL})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help="CIFAR-10, for the test-image picker (default: the usual lookup; the "
                        "picker is hidden when it is not there; nothing is downloaded)")
    add_device_arg(p, default="cpu")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not valid; use 1 to 65535")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own requests, not news
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("resattn serve needs Gradio: pip install 'resattn[serve]'") from None
    from ..api.explain import Explainer
    from ..serve import build_app, cifar_examples

    explainers = [Explainer(m, device=args.device) for m in args.models]
    app = build_app(explainers, cifar_examples(args.data_dir))
    print(f"resattn serve: http://{args.host}:{args.port} ({', '.join(args.models)}); "
          "Ctrl-C stops it", flush=True)
    try:
        app.launch(server_name=args.host, server_port=args.port, show_api=False, quiet=True)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({exc}); choose another "
                        "--port") from None
    return 0
