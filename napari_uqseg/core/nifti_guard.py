"""Bounded decoding of untrusted NIfTI-1 bytes: the header first, then at most the data it declares.

A NIfTI header can declare up to 32767^7 voxels in a few hundred bytes and a gzip stream can expand a
thousandfold, so the header is read and checked against the limits before any voxel is read, gzip is
inflated with a hard output cap, and the voxels are decoded once, straight from the inflated buffer.
"""

from __future__ import annotations

import io
import zlib

import nibabel as nib
import numpy as np
from nibabel.volumeutils import apply_read_scaling

from napari_uqseg.core.errors import InputError

HEADER_BYTES = 348  # NIfTI-1 ``sizeof_hdr``
SINGLE_FILE_OFFSET = 352  # header + 4-byte extension flag: the lowest voxel offset of a ``.nii`` file
#: voxels any decoder accepts unless the caller gives a limit (the server passes its own, smaller one)
DEFAULT_MAX_VOXELS = 1024**3
#: largest extension region between the header and the voxels (``vox_offset - 348``)
MAX_EXTENSION_BYTES = 1024 * 1024
#: decompressed bytes tolerated after the declared voxels (padding some writers add)
TRAILING_SLACK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
INPUT_CHUNK = 1024 * 1024  # compressed bytes fed to the inflater at a time
VOXEL_KINDS = "biuf"  # bool, signed, unsigned, float: no complex, RGB or structured voxels


class _GzipReader:
    """Inflate a (possibly multi-member) gzip stream a bounded number of bytes at a time.

    Input is fed in ``INPUT_CHUNK`` slices of a memoryview, so neither the body nor its tail is copied whole.
    """

    def __init__(self, data: bytes, source: str) -> None:
        self.source = source
        self._view = memoryview(data)
        self._pos = 0
        self._pending: bytes = b""
        self._inflater = zlib.decompressobj(wbits=31)
        self.truncated = False

    def _next_input(self) -> bool:
        if self._pos >= len(self._view):
            return False
        self._pending = self._view[self._pos : self._pos + INPUT_CHUNK]
        self._pos += INPUT_CHUNK
        return True

    def _next_member(self) -> bool:
        """After the end of a member: start the next one; False at the end of the input (zero padding ignored)."""
        rest = bytes(self._inflater.unused_data).lstrip(b"\0")
        while len(rest) < 2:
            if not self._next_input():
                if rest:
                    raise InputError(self.source, "bytes after the end of the gzip stream are not gzip")
                return False
            rest = (rest + bytes(self._pending)).lstrip(b"\0")
        if rest[:2] != GZIP_MAGIC:
            raise InputError(self.source, "bytes after the end of the gzip stream are not gzip")
        self._inflater, self._pending = zlib.decompressobj(wbits=31), rest
        return True

    def read(self, n: int) -> bytearray:
        """Up to ``n`` inflated bytes (fewer only at the end of the stream)."""
        out = bytearray()
        try:
            while len(out) < n:
                if self._inflater.eof and not self._next_member():
                    break
                if not self._pending and not self._next_input():
                    self.truncated = True  # input exhausted before the end of the stream
                    break
                out += self._inflater.decompress(self._pending, n - len(out))
                self._pending = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise InputError(self.source, f"corrupt gzip data ({exc})") from exc
        return out


class _RawReader:
    """The same ``read(n)`` over uncompressed bytes (no copy until read)."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytearray:
        chunk = self._view[self._pos : self._pos + n]
        self._pos += len(chunk)
        return bytearray(chunk)

    def remaining(self) -> int:
        return len(self._view) - self._pos


def parse_header(head: bytes, source: str, max_voxels: int) -> tuple[nib.Nifti1Header, int, int]:
    """Parse and check a NIfTI-1 header; returns it, the voxel data offset and the voxel byte count.

    Raises
    ------
    InputError
        Not NIfTI-1, bad dimensions, non-real voxel type, more than ``max_voxels`` voxels, or an
        implausible data offset.
    """
    if len(head) < HEADER_BYTES:
        raise InputError(source, f"not a NIfTI-1 volume (only {len(head)} bytes, a header needs {HEADER_BYTES})")
    sizes = {int.from_bytes(bytes(head[:4]), order) for order in ("little", "big")}
    if HEADER_BYTES not in sizes:  # checked on the raw bytes: nibabel would "fix" it
        raise InputError(source, f"sizeof_hdr is not {HEADER_BYTES}: not a NIfTI-1 header (NIfTI-2 is not read)")
    try:
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(head[:HEADER_BYTES])), check=True)
        dtype = header.get_data_dtype()
    except Exception as exc:  # nibabel raises several types for a corrupt header
        raise InputError(source, f"not a readable NIfTI-1 header ({exc.__class__.__name__}: {exc})") from exc
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputError(source, f"header declares {dim[0]} dimensions (NIfTI allows 1 to 7)")
    shape = dim[1 : dim[0] + 1]
    if min(shape) < 1:
        raise InputError(source, f"header declares an empty or negative dimension (shape {tuple(shape)})")
    if dtype.kind not in VOXEL_KINDS or dtype.fields is not None:
        raise InputError(source, f"voxel type {dtype} is not a real number type (complex and RGB are refused)")
    voxels = int(np.prod(shape, dtype=object))
    if voxels > max_voxels:
        raise InputError(source, f"header declares {voxels} voxels {tuple(shape)}, over the limit of {max_voxels}")
    offset = int(header.get_data_offset()) or SINGLE_FILE_OFFSET  # 0 means "right after the header"
    if not SINGLE_FILE_OFFSET <= offset <= HEADER_BYTES + MAX_EXTENSION_BYTES:
        raise InputError(
            source,
            f"voxel data offset {offset} is outside [{SINGLE_FILE_OFFSET}, {HEADER_BYTES + MAX_EXTENSION_BYTES}]",
        )
    return header, offset, voxels * dtype.itemsize


def read_nifti_bytes(data: bytes, source: str = "upload", max_voxels: int = DEFAULT_MAX_VOXELS) -> nib.Nifti1Image:
    """Decode NIfTI-1 bytes (plain or gzip) within limits; the image holds its voxels as an array.

    Parameters
    ----------
    data : bytes
        The file's bytes, untrusted.
    source : str
        Name used in error messages.
    max_voxels : int
        Largest voxel count (product of all dimensions) accepted.

    Returns
    -------
    nib.Nifti1Image
        ``dataobj`` is the decoded array (scaled by ``scl_slope``/``scl_inter`` when set), shape as declared.

    Raises
    ------
    InputError
        Bad header, declared size over the limit, fewer bytes than declared, more inflated bytes than
        declared (a gzip bomb), corrupt gzip.
    """
    reader = _GzipReader(data, source) if data[:2] == GZIP_MAGIC else _RawReader(data)
    header, offset, nbytes = parse_header(reader.read(HEADER_BYTES), source, max_voxels)
    if isinstance(reader, _RawReader) and reader.remaining() < offset - HEADER_BYTES + nbytes:
        raise InputError(source, f"body has {len(data)} bytes but the header declares {offset + nbytes}")
    if len(reader.read(offset - HEADER_BYTES)) < offset - HEADER_BYTES:
        raise InputError(source, "truncated before the voxel data")
    buffer = reader.read(nbytes)
    if len(buffer) < nbytes:
        raise InputError(source, f"truncated: {len(buffer)} of the {nbytes} voxel bytes the header declares")
    if isinstance(reader, _GzipReader):
        tail = reader.read(TRAILING_SLACK + 1)
        if len(tail) > TRAILING_SLACK or tail.strip(b"\0"):
            raise InputError(source, "gzip stream inflates to more bytes than the header declares (refused)")
        if reader.truncated:
            raise InputError(source, "gzip stream is truncated (its end and checksum are missing)")
    affine = check_affine(header.get_best_affine(), source)
    shape = header.get_data_shape()
    array = np.frombuffer(buffer, dtype=header.get_data_dtype()).reshape(shape, order="F")
    array = array.astype(array.dtype.newbyteorder("="), copy=False)
    slope, inter = header.get_slope_inter()
    array = apply_read_scaling(array, slope, inter)
    try:
        return nib.Nifti1Image(array, affine, header)
    except Exception as exc:  # nibabel's own header checks
        raise InputError(source, f"not a usable NIfTI-1 header ({exc.__class__.__name__}: {exc})") from exc


def check_affine(affine: np.ndarray, source: str) -> np.ndarray:
    """Refuse a non-finite or singular voxel-to-world matrix (e.g. an all-zero sform).

    Raises
    ------
    InputError
        NaN/Inf entries or a rotation-zoom block with (near) zero determinant.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(source, "affine (sform/qform) is not a finite 4x4 matrix")
    if abs(float(np.linalg.det(affine[:3, :3]))) < 1e-12:
        raise InputError(source, "affine (sform/qform) is singular (e.g. all zero): voxels have no position")
    return affine
