"""The streaming multipart reader: whatever way the body is cut into chunks, the file comes out
byte for byte and the fields before it are read; limits hold while streaming."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.application.errors import ValidationFailed
from reckai.application.files.errors import FileTooLarge
from reckai.entrypoints.http.routes._multipart_stream import MultipartUpload

BOUNDARY = "----b0undary-XyZ"


def encode(fields: dict[str, str], filename: str, content: bytes) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()
    out += content + f"\r\n--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def cut(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points) if b > a]


async def stream_of(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    yield b""  # as Litestar's request.stream() ends


async def read_all(chunks: list[bytes], max_file_bytes: int = 10 * 1024 * 1024) -> tuple[dict[str, str], str | None, bytes]:
    upload = MultipartUpload(stream_of(chunks), BOUNDARY, max_file_bytes=max_file_bytes)
    await upload.read_until_file()
    content = bytearray()
    while (chunk := await upload.next_file_chunk()) is not None:
        content += chunk
    return upload.fields, upload.filename, bytes(content)


@settings(max_examples=150, deadline=None)
@given(content=st.binary(max_size=4000), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
       file_type=st.sampled_from(["bank", "switch", "gl"]))
def test_file_bytes_survive_any_chunking(content: bytes, cuts: list[int], file_type: str) -> None:
    body = encode({"file_type": file_type}, "export.csv", content)
    fields, filename, got = anyio.run(read_all, cut(body, cuts))
    assert fields == {"file_type": file_type}
    assert filename == "export.csv"
    assert got == content


def test_total_size_is_capped_while_reading() -> None:
    body = encode({"file_type": "bank"}, "a.csv", b"x" * 200_000)
    with pytest.raises(FileTooLarge):
        anyio.run(read_all, cut(body, list(range(0, len(body), 4096))), 1000)


def test_truncated_body_is_malformed() -> None:
    body = encode({"file_type": "bank"}, "a.csv", b"abc,def\n" * 10)[:-20]
    with pytest.raises(ValidationFailed):
        anyio.run(read_all, [body])


def test_a_huge_text_field_is_refused() -> None:
    body = encode({"file_type": "b" * 5000}, "a.csv", b"x")
    with pytest.raises(ValidationFailed) as caught:
        anyio.run(read_all, [body])
    assert caught.value.details[0].field == "file_type"
