"""Image uploads streamed to disk (hashed on the way) instead of held whole in memory, and read back mapped."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from starlette.requests import Request

UPLOAD_PREFIX = ".upload-"  # never matches an image name (sha256 hex), so never served


async def receive_upload(request: Request, folder: Path) -> tuple[Path, str]:
    """Stream the request body into a new 0600 file in ``folder``; returns ``(path, sha256 hex)``.

    The body size limit is enforced while streaming by ``security.BodyLimitMiddleware``; on any error
    the partial file is removed.
    """
    fd, name = tempfile.mkstemp(dir=folder, prefix=UPLOAD_PREFIX, suffix=".part")
    path, digest = Path(name), hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()


@contextlib.contextmanager
def mapped(fh: IO[bytes]) -> Iterator[bytes]:
    """A read-only memory map of an open file (``b""`` for an empty one): bytes-like, paged in on demand."""
    if os.fstat(fh.fileno()).st_size == 0:
        yield b""
        return
    view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield view  # type: ignore[misc]
    finally:
        with contextlib.suppress(BufferError):  # a view still held by an error's traceback: freed with it
            view.close()


def remove_stale_uploads(folder: Path) -> int:
    """Delete partial uploads left by a crash (at start-up); returns how many."""
    stale = list(folder.glob(f"{UPLOAD_PREFIX}*.part"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
