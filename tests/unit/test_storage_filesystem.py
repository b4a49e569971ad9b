"""What only the filesystem adapter has: AES-256-GCM frames on disk, tamper and truncation
detection, key rotation, signed app download tokens. (The shared contract is in
test_storage_contract.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.adapters.filesystem.download_tokens import DownloadTokenSigner
from reckai.adapters.filesystem.storage import FileSystemStorage, decode_data_key
from reckai.application.ports.storage import DownloadTokenInvalid, StorageIntegrityError
from reckai.domain.ingestion.storage_keys import upload_key

CHUNK = 1024
KEY_1 = b"\x11" * 32
KEY_2 = b"\x22" * 32


def _storage(root: Path, keys: dict[str, bytes] | None = None, current: str = "k1") -> FileSystemStorage:
    return FileSystemStorage(root, keys=keys or {"k1": KEY_1}, current_key_id=current,
                             public_base_url="http://testserver", chunk_bytes=CHUNK)


def _key() -> str:
    return upload_key(uuid.uuid4(), uuid.uuid4(), dt.date(2024, 6, 1), "csv")


def _read(storage: FileSystemStorage, key: str) -> bytes:
    with storage.open(key) as readback:
        return bytes(readback.read())


def _frames(path: Path, key_id: bytes = b"k1") -> tuple[bytes, list[bytes]]:
    """Split an object file into its header (prefix + meta) and its frames."""
    raw = path.read_bytes()
    header_length = 7 + 2 + len(key_id) + 16 + 4 + 56
    header, body, frames = raw[:header_length], raw[header_length:], []
    while body:
        (length,) = struct.unpack(">I", body[:4])
        frames.append(body[: 4 + length])
        body = body[4 + length :]
    return header, frames


def test_plaintext_never_reaches_the_disk(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    secret = b"ACCOUNT 0123456789 NGN 1,500,000.00 " * 200
    key = _key()
    storage.put(key, [secret])
    on_disk = (tmp_path / key).read_bytes()
    assert b"ACCOUNT 0123456789" not in on_disk
    assert on_disk.startswith(b"RKAIENC\x01")
    assert len(on_disk) > len(secret)  # tags and header, nothing compressed away


def _stored(tmp_path: Path, size: int = 5 * CHUNK + 100) -> tuple[FileSystemStorage, str, Path, bytes]:
    storage = _storage(tmp_path)
    key = _key()
    data = os.urandom(size)
    storage.put(key, [data])
    return storage, key, tmp_path / key, data


def test_flipped_bit_anywhere_is_detected(tmp_path: Path) -> None:
    storage, key, path, data = _stored(tmp_path)
    original = path.read_bytes()
    for position in (3, 40, 80, len(original) // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        path.write_bytes(bytes(tampered))
        with pytest.raises(StorageIntegrityError):
            _read(storage, key)
    path.write_bytes(original)
    assert _read(storage, key) == data


def test_dropped_final_frame_is_detected(tmp_path: Path) -> None:
    storage, key, path, _ = _stored(tmp_path)
    header, frames = _frames(path)
    path.write_bytes(header + b"".join(frames[:-1]))
    with pytest.raises(StorageIntegrityError, match="final frame"):
        _read(storage, key)


def test_truncated_inside_a_frame_is_detected(tmp_path: Path) -> None:
    storage, key, path, _ = _stored(tmp_path)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(StorageIntegrityError):
        _read(storage, key)


def test_reordered_frames_are_detected(tmp_path: Path) -> None:
    storage, key, path, _ = _stored(tmp_path)
    header, frames = _frames(path)
    frames[1], frames[2] = frames[2], frames[1]  # same length, both valid on their own
    path.write_bytes(header + b"".join(frames))
    with pytest.raises(StorageIntegrityError, match="frame 1"):
        _read(storage, key)


def test_duplicated_frame_and_trailing_data_are_detected(tmp_path: Path) -> None:
    storage, key, path, _ = _stored(tmp_path)
    header, frames = _frames(path)
    path.write_bytes(header + b"".join(frames[:2] + frames[1:]))
    with pytest.raises(StorageIntegrityError):
        _read(storage, key)
    path.write_bytes(header + b"".join(frames) + frames[-1])
    with pytest.raises(StorageIntegrityError, match="after the final frame"):
        _read(storage, key)


def test_file_swapped_under_another_key_is_detected(tmp_path: Path) -> None:
    # Another organization's object copied over this one's path must not decrypt as this one.
    storage, key, path, _ = _stored(tmp_path)
    other_key = _key()
    storage.put(other_key, [b"org B data"])
    shutil.copyfile(tmp_path / other_key, path)
    with pytest.raises(StorageIntegrityError):
        _read(storage, key)
    with pytest.raises(StorageIntegrityError):
        storage.head(key)


def test_keys_rotate(tmp_path: Path) -> None:
    old = _storage(tmp_path, {"k1": KEY_1}, "k1")
    old_key = _key()
    old.put(old_key, [b"written under k1"])

    rotated = _storage(tmp_path, {"k1": KEY_1, "k2": KEY_2}, "k2")
    new_key = _key()
    rotated.put(new_key, [b"written under k2"])
    assert _read(rotated, old_key) == b"written under k1"
    assert (tmp_path / new_key).read_bytes()[8:11] == b"\x02k2"

    retired = _storage(tmp_path, {"k2": KEY_2}, "k2")
    with pytest.raises(StorageIntegrityError, match="'k1', which is not in the key ring"):
        _read(retired, old_key)
    assert _read(retired, new_key) == b"written under k2"


def test_wrong_key_with_same_id_is_detected(tmp_path: Path) -> None:
    _, key, _, _ = _stored(tmp_path)
    impostor = _storage(tmp_path, {"k1": KEY_2}, "k1")
    with pytest.raises(StorageIntegrityError):
        impostor.head(key)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=4 * CHUNK + 3), cut=st.integers(min_value=1, max_value=10_000))
def test_any_truncation_is_detected(tmp_path_factory: pytest.TempPathFactory, data: bytes, cut: int) -> None:
    root = tmp_path_factory.mktemp("trunc")
    storage = _storage(root)
    key = _key()
    storage.put(key, [data])
    path = root / key
    raw = path.read_bytes()
    path.write_bytes(raw[: max(0, len(raw) - cut)])
    with pytest.raises(StorageIntegrityError):
        _read(storage, key)


def test_decode_data_key() -> None:
    assert decode_data_key(base64.b64encode(KEY_1).decode()) == KEY_1
    with pytest.raises(ValueError, match="32 bytes"):
        decode_data_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="base64"):
        decode_data_key("not base64!!")


# --- signed app download tokens ---

SIGNER = DownloadTokenSigner(b"s" * 32, "http://testserver/")
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_token_round_trips_until_expiry() -> None:
    key = _key()
    url = SIGNER.url(key, expires_in=dt.timedelta(hours=1), download_name="bank ₦.csv", now=NOW)
    assert url.startswith("http://testserver/api/files/download/")
    token = url.rsplit("/", 1)[1]
    grant = SIGNER.verify(token, now=NOW + dt.timedelta(minutes=59))
    assert (grant.key, grant.download_name) == (key, "bank ₦.csv")
    assert grant.expires_at == NOW + dt.timedelta(hours=1)
    with pytest.raises(DownloadTokenInvalid, match="expired"):
        SIGNER.verify(token, now=NOW + dt.timedelta(hours=1))


def test_forged_or_foreign_tokens_are_refused() -> None:
    token = SIGNER.token(_key(), expires_in=dt.timedelta(hours=1), download_name=None, now=NOW)
    payload, mac = token.split(".")
    other_key = _key()
    forged_payload = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b'"k":"', b'"k":"' + other_key.encode() + b'x')
    ).rstrip(b"=").decode()
    foreign = DownloadTokenSigner(b"t" * 32, "http://testserver").token(
        _key(), expires_in=dt.timedelta(hours=1), download_name=None, now=NOW)
    for bad, reason in [
        (forged_payload + "." + mac, "bad signature"),
        (foreign, "bad signature"),
        (payload + "." + mac[:-4], "bad signature"),
        (payload + "." + mac[:-2], "malformed"),  # 41 chars: not base64
        ("", "malformed"),
        ("a.b.c", "malformed"),
        (payload + ".***", "malformed"),
    ]:
        with pytest.raises(DownloadTokenInvalid) as refused:
            SIGNER.verify(bad, now=NOW)
        assert refused.value.reason == reason, bad
