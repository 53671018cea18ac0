"""The HTTP API and the page: `POST /predict`, `GET /health`, `GET /metadata`, `GET /` (and its
files under `/static/`). Errors answer a one-line JSON `{"error": ...}` with a 4xx or 5xx status."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import metadata as installed
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import DISTRIBUTION, PROGRAM, TASK, TEMPLATE_VERSION
from ..config import Config
from ..drawing import class_colours
from ..errors import first_line
from . import answers
from .batching import Batcher
from .uploads import decode, image_bytes, read_body

STATIC = Path(__file__).parent / "static"
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'"
"""The page loads nothing from elsewhere (no CDN): its script, style and pictures are the server's own."""

log = logging.getLogger("uvicorn.error")
"""uvicorn's own logger, so that the server's lines read alike."""


@dataclass(frozen=True)
class Limits:
    """How requests are batched and what one may ask of the server."""

    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    """How long a batch waits for more requests after its first."""
    max_queue: int = 64
    """Requests admitted at once (read, decoded, waiting or predicted); more are answered 503."""
    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 50_000_000


class _Server:
    """What the routes share: the model once loaded, its batcher, and the requests admitted."""

    def __init__(self) -> None:
        self.model: answers.Model | None = None
        self.batcher: Batcher[Image.Image, Any] | None = None
        self.admitted = 0


def create_app(
    load: Callable[[], answers.Model],
    limits: Limits,
    source: str,
    api_key: str | None = None,
    on_failure: Callable[[BaseException], None] = lambda error: None,
) -> FastAPI:
    """The app serving the model `load` returns. The model loads once the server listens, so that
    `/health` answers 503 until it is ready; a failure to load goes to `on_failure`. With `api_key`,
    `/predict` and `/metadata` need it in the `X-API-Key` header."""
    server = _Server()

    async def load_model() -> None:
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(load)
        except Exception as error:
            on_failure(error)
            return
        server.batcher = Batcher(model.predict, limits.max_batch_size, limits.max_wait_ms / 1000)
        server.batcher.start()
        server.model = model
        log.info("%s loaded in %.1f s: ready", source, time.perf_counter() - started)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(load_model())
        yield
        loading.cancel()
        if server.batcher is not None:
            await server.batcher.stop()

    app = FastAPI(title=PROGRAM, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    described = _description(source, limits)

    @app.exception_handler(StarletteHTTPException)
    async def one_line(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        """A fault of the server's own (the traceback goes to the log): still a one-line JSON answer."""
        return JSONResponse({"error": f"internal error: {first_line(error)}"}, status_code=500)

    def authorized(request: Request) -> None:
        given = request.headers.get("x-api-key", "")
        if api_key is not None and not hmac.compare_digest(given.encode(), api_key.encode()):
            reason = "wrong API key" if given else "an API key is needed"
            raise HTTPException(
                401, f"{reason}: send it in the X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"}
            )

    def ready() -> tuple[answers.Model, Batcher[Image.Image, Any]]:
        if server.model is None or server.batcher is None:
            raise HTTPException(503, "the model is still loading; GET /health says when it is ready")
        return server.model, server.batcher

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the model is loaded and answering, 503 before."""
        loaded = server.model is not None
        return JSONResponse({"status": "ready" if loaded else "loading"}, 200 if loaded else 503)

    @app.get("/metadata", dependencies=[Depends(authorized)])
    async def metadata() -> dict[str, Any]:
        model, _ = ready()
        return {**described, **_model_description(model)}

    @app.post("/predict", dependencies=[Depends(authorized)])
    async def predict(request: Request) -> JSONResponse:
        """The prediction for one image: the body, or the file of a multipart form."""
        model, batcher = ready()
        if server.admitted >= limits.max_queue:
            raise HTTPException(
                503, f"busy: {limits.max_queue} requests are being answered", headers={"Retry-After": "1"}
            )
        server.admitted += 1
        try:
            data = await image_bytes(request, await read_body(request, limits.max_body_bytes))
            picture = await asyncio.to_thread(decode, data, limits.max_pixels)
            prediction, batch_size = await batcher.submit(picture)
        finally:
            server.admitted -= 1
        answer = {"width": picture.width, "height": picture.height, **answers.answer(prediction, model)}
        return JSONResponse(answer, headers={"X-Batch-Size": str(batch_size)})

    return app


def _description(source: str, limits: Limits) -> dict[str, Any]:
    """What `/metadata` says of the server and the project."""
    try:
        version: str | None = installed.version(DISTRIBUTION)
    except installed.PackageNotFoundError:  # run from a source tree that is not installed
        version = None
    return {
        "project": PROGRAM,
        "version": version,
        "template_version": TEMPLATE_VERSION,
        "task": TASK,
        "model_file": source,
        "limits": asdict(limits),
    }


def _model_description(model: answers.Model) -> dict[str, Any]:
    """What `/metadata` says of the model: its classes (and the colour the page draws each in), the
    size it sees images at, the views it merges, and its config's digest."""
    return {
        "classes": model.class_names,
        "colours": ["#{:02x}{:02x}{:02x}".format(*colour) for colour in class_colours(len(model.class_names))],
        "image_size": model.config.data.image_size,
        "tta": model.config.model.tta,
        "config_sha256": config_digest(model.config),
        **answers.details(model),
    }


def config_digest(config: Config) -> str:
    """The SHA-256 of the config as canonical JSON: equal digests, the same settings."""
    return hashlib.sha256(json.dumps(config.to_data(), sort_keys=True).encode()).hexdigest()
