"""An uploaded image, read and checked before it takes any of the model's time: the body within
its size limit, a content type that carries an image, and a picture of sensible dimensions decoded
as `predict` decodes files. Each problem is an `HTTPException` with a one-line reason."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator

from fastapi import HTTPException, Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..data.images import read_rgb

RAW_TYPES = ("image/", "application/octet-stream")
"""Content types of a body that is the image's bytes."""
HOW = "send the image's bytes (Content-Type: image/jpeg, image/png, ...) or a multipart upload with one file"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is larger than `limit` bytes (whether or not
    the client announced its length)."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise HTTPException(413, f"body of {int(announced)} bytes: over this server's limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body over this server's limit of {limit} bytes")
    if not body:
        raise HTTPException(400, f"empty body: {HOW}")
    return bytes(body)


async def image_bytes(request: Request, body: bytes) -> bytes:
    """The image's bytes: the body itself, or the one file of a multipart form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith(RAW_TYPES):
        return body
    if content_type != "multipart/form-data":
        raise HTTPException(415, f"content type {content_type or '(none)'!r}: {HOW}")

    async def chunks() -> AsyncGenerator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, chunks(), max_files=1, max_fields=16).parse()
    except MultiPartException as error:
        raise HTTPException(400, f"multipart form: {error.message}") from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise HTTPException(400, f"multipart form without a file: {HOW}")
    data = await files[0].read()
    await form.close()
    if not data:
        raise HTTPException(400, f"multipart form: the file {files[0].filename!r} is empty")
    return data


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """The picture as 8-bit RGB, decoded as `predict` decodes a file; 400 for what is not a whole
    image, 422 for dimensions over `max_pixels` (read from the header, before decoding)."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except Image.DecompressionBombError:
        raise HTTPException(422, f"image dimensions over this server's limit of {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise HTTPException(400, f"not an image PIL can read: {HOW}") from None
    if width * height > max_pixels:
        raise HTTPException(422, f"image of {width}x{height} pixels: over this server's limit of {max_pixels} pixels")
    try:
        return read_rgb(io.BytesIO(data))
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt image data
        raise HTTPException(400, f"a broken {width}x{height} image: {error}") from None
