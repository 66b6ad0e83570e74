"""A generated corpus of bad requests: broken and hostile NIfTI, extreme headers, wrong dtypes, NaN/Inf,
wrong dimensionality, singular affines, path-like ids, malformed and oversized JSON.

Each case is a ``BadRequest`` the server must answer with a 4xx and a message; none may give a 5xx or hang.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np

MiB = 1024 * 1024


@dataclass
class BadRequest:
    """One request of the corpus (``path`` may hold ``{pid}``, filled with a real prediction id)."""

    name: str
    method: str
    path: str
    body: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def nifti_raw(array: np.ndarray, affine: np.ndarray | None = None) -> bytes:
    return nib.Nifti1Image(array, np.eye(4) if affine is None else affine).to_bytes()


def header_bytes(shape: tuple[int, ...], dtype: Any = np.float32, **fields: Any) -> bytearray:
    """A 352-byte NIfTI-1 header (+ extension flag) declaring ``shape``; ``fields`` set raw header fields."""
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header["dim"] = [len(shape), *shape, *([1] * (7 - len(shape)))]
    header["vox_offset"] = 352
    for key, value in fields.items():
        header[key] = value
    return bytearray(header.binaryblock + b"\0" * 4)


def with_data(head: bytearray, array: np.ndarray) -> bytes:
    return bytes(head) + array.tobytes(order="F")


def _garbage() -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 10, 100, 347, 348, 351, 352, 1000, 4096, 100_000):
        yield f"random bytes x{n}", rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    yield "gzip magic only", b"\x1f\x8b"
    yield "gzip of nothing", gzip.compress(b"")
    yield "gzip of text", gzip.compress(b"hello world" * 50)
    yield "text", b"not a nifti file at all" * 20
    yield "json instead of nifti", b'{"image": [1, 2, 3]}'


def _truncated(good: bytes) -> Iterator[tuple[str, bytes]]:
    packed = gzip.compress(good)
    for frac in (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        yield f"raw cut at {frac:.0%}", good[: int(len(good) * frac)]
        yield f"gzip cut at {frac:.0%}", packed[: int(len(packed) * frac)]
    yield "raw missing last byte", good[:-1]
    yield "gzip missing its trailer", packed[:-8]


def _headers() -> Iterator[tuple[str, bytes]]:
    for shape in [(32767, 32767, 32767), (800, 800, 800), (4096, 4096, 64), (32767, 2, 2, 2, 2, 2, 2)]:
        head = header_bytes(shape)
        yield f"header-only {shape}", bytes(head)
        yield f"header-only gzip {shape}", gzip.compress(bytes(head))
    for dims in ([3, 0, 4, 4], [3, 4, -4, 4], [0, 4, 4, 4], [8, 4, 4, 4], [-1, 4, 4, 4], [3, -32768, 4, 4]):
        head = header_bytes((4, 4, 4))
        raw = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(head[:348])), check=False)
        raw["dim"] = [*dims, *([1] * (8 - len(dims)))]
        yield f"dims {dims}", raw.binaryblock + b"\0" * 4 + bytes(256)
    for offset in (100.0, 351.0, 2.0**31, 1e12, -352.0):
        head = header_bytes((4, 4, 4), vox_offset=offset)
        yield f"vox_offset {offset:g}", with_data(head, np.zeros((4, 4, 4), np.float32))
    bad_size = header_bytes((4, 4, 4))
    bad_size[0:4] = (540).to_bytes(4, "little")
    yield "sizeof_hdr 540 (NIfTI-2 claim)", with_data(bad_size, np.zeros((4, 4, 4), np.float32))
    bad_magic = header_bytes((4, 4, 4))
    bad_magic[344:348] = b"xyz\0"
    yield "wrong magic", with_data(bad_magic, np.zeros((4, 4, 4), np.float32))
    big_bitpix = header_bytes((4, 4, 4))
    big_bitpix[70:72] = (9999).to_bytes(2, "little")  # datatype code
    yield "unknown datatype code", with_data(big_bitpix, np.zeros((4, 4, 4), np.float32))


def _dtypes() -> Iterator[tuple[str, bytes]]:
    for dtype in (np.complex64, np.complex128):
        yield f"dtype {np.dtype(dtype).name}", nifti_raw(np.ones((6, 6, 6), dtype) * (1 + 1j))
    rgb = np.zeros((6, 6, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    yield "dtype RGB24", nifti_raw(rgb)
    rgba = np.zeros((6, 6, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])
    yield "dtype RGBA32", nifti_raw(rgba)


def _values() -> Iterator[tuple[str, bytes]]:
    base = np.random.default_rng(1).normal(size=(8, 8, 8)).astype(np.float32)
    for label, value in (("NaN", np.nan), ("+Inf", np.inf), ("-Inf", -np.inf)):
        for where in ((0, 0, 0), (7, 7, 7), (3, 4, 5)):
            bad = base.copy()
            bad[where] = value
            yield f"{label} at {where}", nifti_raw(bad)
    yield "all NaN", nifti_raw(np.full((8, 8, 8), np.nan, np.float32))
    big = np.full((8, 8, 8), 3e38, np.float32)
    head = header_bytes((8, 8, 8), scl_slope=1e30, scl_inter=0.0)
    yield "slope overflows to Inf", with_data(head, big)


def _shapes() -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(2)
    for shape in ((8,), (8, 8), (8, 8, 8, 3), (8, 8, 8, 2, 2), (8, 8, 8, 1, 3), (1, 1, 1, 1, 1, 1, 2)):
        yield f"shape {shape}", nifti_raw(rng.normal(size=shape).astype(np.float32))


def _affines() -> Iterator[tuple[str, bytes]]:
    data = np.random.default_rng(3).normal(size=(8, 8, 8)).astype(np.float32)
    rank2 = np.eye(4)
    rank2[2, 2] = 0.0
    for name, matrix in (("zero", np.zeros((4, 4))), ("rank 2", rank2), ("tiny", np.diag([1e-9, 1e-9, 1e-9, 1]))):
        head = header_bytes((8, 8, 8))
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(head[:348])), check=False)
        header.set_sform(matrix, code=2)
        yield f"sform {name}", header.binaryblock + b"\0" * 4 + data.tobytes(order="F")
    head = header_bytes((8, 8, 8), quatern_b=np.nan, qform_code=1, sform_code=0)
    yield "qform with NaN", with_data(head, data)
    head = header_bytes((8, 8, 8), srow_x=[np.nan, 0, 0, 0], sform_code=2)
    yield "sform with NaN", with_data(head, data)


def _bombs() -> Iterator[tuple[str, bytes]]:
    valid = nifti_raw(np.ones((16, 16, 16), np.float32))
    for extra_mb in (1, 64, 256):
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(MiB)
        parts = [packer.compress(valid)] + [packer.compress(zeros) for _ in range(extra_mb)] + [packer.flush()]
        yield f"gzip bomb 16^3 + {extra_mb} MiB zeros", b"".join(parts)
    yield "second gzip member of garbage", gzip.compress(valid) + gzip.compress(b"x" * 1000)
    yield "trailing garbage after gzip", gzip.compress(valid) + b"garbage"


def upload_cases() -> list[BadRequest]:
    """Image uploads with the right sha256 in the URL (so only the body is wrong)."""
    good = nifti_raw(np.random.default_rng(4).normal(size=(12, 12, 12)).astype(np.float32))
    sources = (_garbage(), _truncated(good), _headers(), _dtypes(), _values(), _shapes(), _affines(), _bombs())
    cases = []
    for source in sources:
        for name, body in source:
            path = f"/v1/images/{hashlib.sha256(body).hexdigest()}"
            cases.append(BadRequest(f"upload: {name}", "PUT", path, body=body))
    cases.append(BadRequest("upload: sha mismatch", "PUT", "/v1/images/" + "0" * 64, body=gzip.compress(good)))
    for sha in ("..", "ABC", "g" * 64, "0" * 63, "0" * 65, "..%2F..%2Fledger.sqlite", "%00" * 3, "a/b"):
        cases.append(BadRequest(f"upload: image id {sha!r}", "PUT", f"/v1/images/{sha}", body=good))
    return cases


def label_b64(array: np.ndarray, affine: np.ndarray | None = None) -> str:
    return base64.b64encode(gzip.compress(nifti_raw(array, affine))).decode()
