"""The `serve` command: its options, and the server run with them until Ctrl+C or SIGTERM.

FastAPI and uvicorn (the project's `serve` extra) are imported only once the command runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
from pathlib import Path
from types import FrameType

from .. import PROGRAM
from ..errors import ConfigError
from ..paths import existing_file

API_KEY_VARIABLE = f"{PROGRAM.upper()}_API_KEY"
"""The environment variable that, when set, is the key every `/predict` and `/metadata` request needs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=_user_path, metavar="PATH", help="checkpoint to serve")
    model.add_argument(
        "--model",
        type=_user_path,
        metavar="FILE",
        help="or a file `export` wrote: model.onnx (run by onnxruntime) or model.pt2",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument(
        "--port", type=_count, default=8000, help="port to listen on; 0 picks a free one (default: 8000)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N (default: auto)"
    )
    parser.add_argument(
        "--max-batch-size",
        type=_positive,
        default=8,
        metavar="N",
        help="images per batch (default: 8; 1 turns batching off)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        metavar="MS",
        help="how long a batch waits for more requests (default: 10)",
    )
    parser.add_argument(
        "--max-queue",
        type=_positive,
        default=64,
        metavar="N",
        help="requests admitted at once; more get 503 (default: 64)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="largest request body; larger get 413 (default: 20)",
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive,
        default=50_000_000,
        metavar="N",
        help="largest image, width x height; larger get 422 (default: 50000000)",
    )
    parser.epilog = (
        f"With {API_KEY_VARIABLE} set, /predict and /metadata need its value in the X-API-Key header;"
        " /health and the page do not."
    )


def serve(args: argparse.Namespace, extra: list[str]) -> int:
    """Serve until interrupted; a model that cannot be loaded is a `ConfigError` naming the file."""
    if extra:
        raise ConfigError(f"serve: unknown option {extra[0]} (the model's config comes with its file)")
    option, path = ("--checkpoint", args.checkpoint) if args.checkpoint is not None else ("--model", args.model)
    existing_file(path, option)
    if option == "--model" and path.suffix not in (".onnx", ".pt2"):
        raise ConfigError(f"--model {path}: not a file `export` wrote (model.onnx or model.pt2)")
    if args.max_wait_ms < 0:
        raise ConfigError(f"--max-wait-ms {args.max_wait_ms}: must be at least 0")
    if args.max_body_mb <= 0:
        raise ConfigError(f"--max-body-mb {args.max_body_mb}: must be more than 0")
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"--device {args.device}: expected auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: torch sees no CUDA GPU here")
    listening = _listen(args.host, args.port)

    import uvicorn

    from ..inference import load_model
    from .app import Limits, create_app

    limits = Limits(
        args.max_batch_size, args.max_wait_ms, args.max_queue, int(args.max_body_mb * 2**20), args.max_pixels
    )
    failures: list[BaseException] = []

    def failed(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    api_key = os.environ.get(API_KEY_VARIABLE) or None
    app = create_app(lambda: load_model(path, device), limits, path.name, api_key, failed)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5))
    host, port = listening.getsockname()[:2]
    print(f"Serving {path} on http://{host}:{port}/ (the page at /, POST /predict)", flush=True)
    default_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with listening:
            server.run(sockets=[listening])
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM: uvicorn raises it again once it has shut down gracefully
        pass
    finally:
        signal.signal(signal.SIGTERM, default_sigterm)
    if failures:
        raise failures[0]
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a port in use is a one-line error before any model work."""
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None
    return listening


def _user_path(text: str) -> Path:
    return Path(text).expanduser()


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (got {text!r})")
    return int(text)


def _positive(text: str) -> int:
    if _count(text) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 (got {text!r})")
    return int(text)
