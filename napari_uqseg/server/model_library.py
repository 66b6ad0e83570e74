"""Getting models and training data into a data folder: catalogue pulls, imports, exports, datasets.

Functions over a ``Service`` (its ``DataDir`` and ledger), shared by the HTTP routes
(``server.routes.models``), the in-process ``LocalBackend`` and the ``uqseg models`` command. Every
transfer is staged under ``<data>/tmp`` and registered only once complete, so an interrupted download or
a bad archive leaves nothing half-installed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from napari_uqseg.core.archives import is_model_folder, pack_dataset, pack_model, unpack_dataset, unpack_model
from napari_uqseg.core.catalogue import CatalogueEntry, fetch_model, find_entry, read_catalogue
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.records import ModelSummary
from napari_uqseg.core.wire import NAME_PATTERN, check_id
from napari_uqseg.server.data_dir import safe_path
from napari_uqseg.server.service import Service


@contextmanager
def staging(service: Service) -> Iterator[Path]:
    """A scratch folder inside the data folder (same file system: the final move is a rename)."""
    root = service.store.root / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="transfer.", dir=root) as tmp:
        yield Path(tmp)


def catalogue(source: str | None = None) -> list[CatalogueEntry]:
    """Entries of the catalogue (default: ``$UQSEG_CATALOGUE`` or the shipped one)."""
    return read_catalogue(source)


def pull_model(service: Service, entry_name: str, name: str | None = None, source: str | None = None) -> ModelSummary:
    """Download, verify (sha256) and register a catalogue entry as the next version of ``name``.

    Raises
    ------
    InputError
        Unknown entry, failed or incomplete download, checksum mismatch, not a model archive.
    """
    name = check_id(name or entry_name, "model", NAME_PATTERN)
    entry = find_entry(read_catalogue(source), entry_name)
    with staging(service) as tmp:
        folder = fetch_model(entry, tmp / "model")
        service.store.add_model_version(name, folder, move=True)
    return service.model(name)


def import_model(service: Service, name: str, source: str | Path) -> ModelSummary:
    """Register a model folder or a ``.tar.gz`` model archive on this machine as the next version of ``name``."""
    name = check_id(name, "model", NAME_PATTERN)
    source = Path(source)
    if source.is_dir():
        if not is_model_folder(source):
            raise InputError(str(source), "not a model folder (no model.json); choose the folder that holds it")
        service.store.add_model_version(name, source)
        return service.model(name)
    if not source.is_file():
        raise InputError(str(source), "no such file or folder")
    with staging(service) as tmp:
        service.store.add_model_version(name, unpack_model(source, tmp / "model"), move=True)
    return service.model(name)


def import_model_bytes(service: Service, name: str, data: bytes) -> ModelSummary:
    """Register an uploaded model archive (the bytes of a ``.tar.gz``)."""
    with staging(service) as tmp:
        archive = tmp / "upload.tar.gz"
        archive.write_bytes(data)
        return import_model(service, name, archive)


def export_model(service: Service, name: str, version: str | None, archive: str | Path) -> Path:
    """Write a version (default: serving) of ``name`` as a model archive ``archive``."""
    summary = service.model(name)
    version = version or summary.serving
    if version not in {v.version for v in summary.versions}:
        raise InputError("version", f"model {name!r} has no version {version!r}")
    return pack_model(service.store.model_dir(name, version), archive)


def add_dataset(service: Service, name: str, source: str | Path) -> Path:
    """Copy a labelled MSD-layout folder, or unpack a dataset archive, into ``datasets/<name>`` for training.

    An existing dataset of that name is replaced only after the new one is complete.
    """
    target = safe_path(service.store.root / "datasets", check_id(name, "dataset", NAME_PATTERN))
    source = Path(source)
    with staging(service) as tmp:
        archive = source if source.is_file() else pack_dataset(source, tmp / "dataset.tar.gz")
        folder = unpack_dataset(archive, tmp / "dataset")
        target.parent.mkdir(parents=True, exist_ok=True)
        old = tmp / "old"
        if target.exists():
            target.replace(old)
        folder.replace(target)
        shutil.rmtree(old, ignore_errors=True)
    return target


def add_dataset_bytes(service: Service, name: str, data: bytes) -> Path:
    """:func:`add_dataset` for an uploaded dataset archive."""
    with staging(service) as tmp:
        archive = tmp / "upload.tar.gz"
        archive.write_bytes(data)
        return add_dataset(service, name, archive)
