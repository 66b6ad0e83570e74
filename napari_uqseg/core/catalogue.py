"""The model catalogue: named entries (URL, sha256, card) and a verified, all-or-nothing download.

A catalogue is a JSON file ``{"models": [{"name", "url", "sha256", "card"}, ...]}``, read from a path,
an ``http(s)://`` URL, or (default) the one shipped in ``napari_uqseg/resources/catalogue.json``, whose
entries with a ``bundled:FOLDER`` URL are model folders inside the package (nothing to download).
The environment variable ``UQSEG_CATALOGUE`` names another default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from napari_uqseg.core.archives import is_model_folder, unpack_model
from napari_uqseg.core.errors import InputError, NotFoundError

CATALOGUE_ENV = "UQSEG_CATALOGUE"
BUNDLED_SCHEME = "bundled:"
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
_SHA256 = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 16


@dataclass(frozen=True)
class CatalogueEntry:
    """One downloadable model: ``name``, archive ``url``, its ``sha256`` (hex) and its ``card`` (task, labels,
    spacing, method, licence, training data, measured figures)."""

    name: str
    url: str
    sha256: str | None = None
    card: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(BUNDLED_SCHEME) and not (self.sha256 and _SHA256.fullmatch(self.sha256)):
            raise InputError(f"catalogue entry {self.name!r}", "needs a sha256 of 64 lower-case hex digits")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "sha256": self.sha256, "card": dict(self.card)}


def default_catalogue() -> str:
    """``$UQSEG_CATALOGUE`` or the shipped ``resources/catalogue.json``."""
    return os.environ.get(CATALOGUE_ENV) or str(RESOURCES / "catalogue.json")


def _read_text(source: str, timeout: float) -> str:
    if source.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(source, timeout=timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise InputError(source, f"cannot read the catalogue ({exc.__class__.__name__}: {exc})") from exc
        return response.text
    path = Path(source)
    if not path.is_file():
        raise InputError(source, "catalogue file does not exist")
    return path.read_text()


def read_catalogue(source: str | None = None, timeout: float = 30.0) -> list[CatalogueEntry]:
    """Entries of the catalogue at ``source`` (path or URL; default :func:`default_catalogue`).

    Raises
    ------
    InputError
        Unreadable, invalid JSON, malformed entries.
    """
    source = source or default_catalogue()
    try:
        data = json.loads(_read_text(source, timeout))
        entries = [CatalogueEntry(**e) for e in data["models"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(source, f"not a model catalogue ({exc.__class__.__name__}: {exc})") from exc
    return entries


def find_entry(entries: list[CatalogueEntry], name: str) -> CatalogueEntry:
    """The entry called ``name``; NotFoundError listing the known names otherwise."""
    for entry in entries:
        if entry.name == name:
            return entry
    raise NotFoundError("model", f"no catalogue entry {name!r}; known: {[e.name for e in entries]}")


def download_verified(url: str, sha256: str, dest: str | os.PathLike, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, keeping it only if it is complete and its SHA-256 is ``sha256``.

    Bytes go to ``dest + ".part"``, hashed on the way; a short body (fewer bytes than Content-Length, a
    dropped connection), an HTTP error or a wrong checksum removes the part file and raises.

    Raises
    ------
    InputError
        Download failed or incomplete, or checksum mismatch (the message names both hashes).
    """
    import requests

    dest = Path(dest)
    if url.startswith("file://"):
        return _copy_verified(Path(unquote(urlparse(url).path)), sha256, dest)
    part = dest.with_name(dest.name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        with requests.get(url, stream=True, timeout=timeout) as response, part.open("wb") as out:
            response.raise_for_status()
            expected = response.headers.get("Content-Length")
            for chunk in response.iter_content(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if expected is not None and size != int(expected):
            raise InputError(url, f"download incomplete: {size} of {expected} bytes")
        if digest.hexdigest() != sha256:
            raise InputError(url, f"checksum mismatch: got sha256 {digest.hexdigest()}, the catalogue says {sha256}")
        os.replace(part, dest)
        return dest
    except requests.RequestException as exc:
        raise InputError(url, f"download failed ({exc.__class__.__name__}: {exc})") from exc
    finally:
        part.unlink(missing_ok=True)


def _copy_verified(path: Path, sha256: str, dest: Path) -> Path:
    """``download_verified`` for a ``file://`` URL (a shared drive inside a hospital network)."""
    if not path.is_file():
        raise InputError(str(path), "the catalogue's archive file does not exist")
    got = sha256_file(path)
    if got != sha256:
        raise InputError(str(path), f"checksum mismatch: got sha256 {got}, the catalogue says {sha256}")
    shutil.copyfile(path, dest)
    return dest


def fetch_model(entry: CatalogueEntry, dest: str | os.PathLike, timeout: float = 60.0) -> Path:
    """The entry's model folder, written to the new folder ``dest`` (downloaded, verified and unpacked).

    Nothing is left at ``dest`` unless every step succeeded.
    """
    dest = Path(dest)
    if entry.url.startswith(BUNDLED_SCHEME):
        folder = RESOURCES / entry.url.removeprefix(BUNDLED_SCHEME)
        if not is_model_folder(folder):
            raise NotFoundError(entry.url, "this install does not ship that model folder")
        shutil.copytree(folder, dest)
        return dest
    with tempfile.TemporaryDirectory(prefix=".pull.", dir=dest.parent) as tmp:
        archive = download_verified(entry.url, str(entry.sha256), Path(tmp) / "model.tar.gz", timeout)
        return unpack_model(archive, dest)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
