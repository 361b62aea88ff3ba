"""Multipart form data read with a limit and a deadline: a run's inputs with the files of its FILE inputs, from the
API (Kestra's way to run a flow with files) and from the web UI's Run form alike."""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from gitsync.http.guard import BodyError
from runner.inputs import UploadedFile

FormItems = list[tuple[str, str | UploadedFile]]


async def read_form_items(request: Request, limit: int, parts: int, timeout: float) -> FormItems:
    """The form's fields in order (a multiple choice is several), each file part an `UploadedFile`; a file field
    left empty (no name, no bytes: no file chosen) is no field. Refused (BodyError) beyond `limit` bytes, before and
    while it streams (413), beyond `parts` fields or files (400), and when it has not all arrived within `timeout`
    seconds (408)."""
    length = request.headers.get("content-length", "")
    if length.strip().isdigit() and int(length) > limit:
        raise BodyError(413, f"request body over {limit} bytes")
    size = 0

    async def receive() -> Message:
        nonlocal size
        message = await request.receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyError(413, f"request body over {limit} bytes")
        return message

    items: FormItems = []
    try:
        async with asyncio.timeout(timeout):
            async with Request(request.scope, receive).form(max_files=parts, max_fields=parts) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        if value.filename or data:
                            items.append((name, UploadedFile(filename=value.filename or name, data=data)))
                    else:
                        items.append((name, value))
    except TimeoutError:
        raise BodyError(408, f"the form did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise BodyError(400, "the client went away before the form was sent") from None
    except (HTTPException, MultiPartException) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else exc.message
        raise BodyError(400, f"the multipart form data cannot be read: {detail}") from None
    return items
