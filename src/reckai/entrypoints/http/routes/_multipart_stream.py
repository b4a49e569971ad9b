"""Reading a multipart/form-data upload as a stream (Litestar's own parser buffers the whole body).

`MultipartUpload` pulls the request body chunk by chunk through `multipart.PushMultipartParser`:
the small text fields that come first are collected, then the file's bytes are handed out one
chunk at a time, so the body is never held whole. Like S3's POST uploads, the file must be the
last part: a part after it is refused (by then the file has been streamed; refusing makes the
storage write fail, so nothing is kept).

The total request size is capped while reading (the file limit plus a small allowance for the
other parts and the multipart framing), so a client cannot get around the file limit by sending
a huge text field or preamble.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from litestar.exceptions import InternalServerException
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from reckai.application.errors import FieldError, ValidationFailed
from reckai.application.files.errors import FileTooLarge
from reckai.entrypoints.http.errors import is_client_disconnect

FORM_OVERHEAD_BYTES = 64 * 1024
FIELD_MAX_BYTES = 1024
MAX_PARTS_BEFORE_FILE = 10
FILE_FIELD = "file"


class RequestInterrupted(ValidationFailed):
    """The client went away (or the connection broke) before the body was complete: 400, never a
    500; the answer rarely reaches anyone, but the request log and the error log stay truthful."""

    code = "REQUEST_INTERRUPTED"

    def __init__(self) -> None:
        super().__init__([FieldError("body", "the connection ended before the request body was complete")],
                         message="The request was interrupted")


def malformed(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("body", message)], message="The upload is not a valid multipart form")


class MultipartUpload:
    def __init__(self, stream: AsyncIterator[bytes], boundary: str, *, max_file_bytes: int) -> None:
        self._stream = stream
        self._max_file_bytes = max_file_bytes
        self._max_request_bytes = max_file_bytes + FORM_OVERHEAD_BYTES
        try:
            self._parser = PushMultipartParser(boundary, max_header_count=8, max_segment_count=MAX_PARTS_BEFORE_FILE + 1)
        except MultipartError as exc:
            raise malformed("the multipart boundary is not valid") from exc
        self._events: deque[Any] = deque()
        self._received = 0
        self._ended = False
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._file_done = False

    async def _next_event(self) -> Any:
        while not self._events:
            if self._ended:
                return _END
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                chunk = b""
            except InternalServerException as exc:
                if not is_client_disconnect(exc):
                    raise
                # The client's doing, not a server error; nothing is stored (the storage write
                # fails with this exception and leaves nothing behind).
                raise RequestInterrupted() from exc
            self._received += len(chunk)
            if self._received > self._max_request_bytes:
                raise FileTooLarge(self._max_file_bytes)
            try:
                self._events.extend(list(self._parser.parse(chunk)))
            except MultipartError as exc:
                raise malformed(f"malformed multipart body ({type(exc).__name__})") from exc
            if not chunk:
                self._ended = True
        return self._events.popleft()

    async def read_until_file(self) -> None:
        """Collect the text fields up to the `file` part's headers."""
        current: str | None = None
        value = bytearray()
        while True:
            event = await self._next_event()
            if event is _END:
                raise ValidationFailed([FieldError(FILE_FIELD, "a file part named 'file' is required")])
            if isinstance(event, MultipartSegment):
                if event.name == FILE_FIELD:
                    self.filename = event.filename or ""
                    return
                if event.filename is not None:
                    raise ValidationFailed([FieldError(event.name or "", "only one file, in the part named 'file'")])
                current, value = event.name or "", bytearray()
            elif event is None:
                if current is not None:
                    try:
                        self.fields[current] = value.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        raise ValidationFailed([FieldError(current, "must be UTF-8 text")]) from None
                current = None
            else:
                value += event
                if len(value) > FIELD_MAX_BYTES:
                    raise ValidationFailed([FieldError(current or "", f"longer than {FIELD_MAX_BYTES} bytes")])

    async def next_file_chunk(self) -> bytes | None:
        """The next chunk of the file's bytes; None once the file (and the whole body) has ended."""
        if self._file_done:
            return None
        event = await self._next_event()
        if isinstance(event, (bytes, bytearray, memoryview)):
            return bytes(event)
        if event is None:  # end of the file part: the rest must be only the closing boundary
            self._file_done = True
            while (rest := await self._next_event()) is not _END:
                if isinstance(rest, MultipartSegment):
                    raise ValidationFailed([FieldError(rest.name or "", "fields must come before the file part")])
            return None
        raise malformed("the file part ended unexpectedly")

    def file_chunks(self) -> Iterator[bytes]:
        """A blocking iterator over the file's bytes, for a worker thread started by anyio."""
        while (chunk := anyio.from_thread.run(self.next_file_chunk)) is not None:
            if chunk:
                yield chunk


_END = object()
