"""Model folders and labelled datasets as ``.tar.gz`` archives: pack for sharing, unpack safely.

A model archive holds the files of one model folder (``model.json`` plus weights), at its top level or in
one top-level folder; a dataset archive holds an MSD-layout folder (``dataset.json``, ``imagesTr/``,
``labelsTr/``). Unpacking refuses links, absolute paths, ``..`` and anything but regular files, and
writes into a staging folder that is renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from napari_uqseg.core.errors import InputError

CARD_FILE = "model.json"
#: largest archive member accepted (weights of a big U-Net ensemble stay far below)
MAX_MEMBER_BYTES = 2 * 1024**3


def is_model_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding ``model.json``."""
    return (Path(path) / CARD_FILE).is_file()


def pack_model(folder: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Write the model ``folder``'s regular files (sorted, flat) into the gzip tar ``archive``.

    Raises
    ------
    InputError
        ``folder`` is not a model folder.
    """
    folder, archive = Path(folder), Path(archive)
    if not is_model_folder(folder):
        raise InputError(str(folder), f"not a model folder (no {CARD_FILE})")
    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    with tarfile.open(part, "w:gz") as tar:
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            info = tar.gettarinfo(str(file), arcname=file.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with file.open("rb") as fh:
                tar.addfile(info, fh)
    os.replace(part, archive)
    return archive


def _member_path(member: tarfile.TarInfo, source: str, depth: int = 2) -> PurePosixPath:
    path = PurePosixPath(member.name)
    if member.issym() or member.islnk() or not (member.isfile() or member.isdir()):
        raise InputError(source, f"archive member {member.name!r} is not a regular file")
    if path.is_absolute() or ".." in path.parts or len(path.parts) > depth:
        raise InputError(source, f"archive member {member.name!r} has an unsafe or nested path")
    if member.size > MAX_MEMBER_BYTES:
        raise InputError(source, f"archive member {member.name!r} is larger than {MAX_MEMBER_BYTES} bytes")
    return path


@contextmanager
def _staged_folder(dest: Path) -> Iterator[Path]:
    """A fresh folder beside ``dest`` that becomes ``dest`` when the block succeeds and is removed otherwise."""
    if dest.exists():
        raise InputError(str(dest), "already exists; choose another name")
    staging = dest.with_name(f".{dest.name}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unpack_model(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a model archive into the new folder ``dest`` and return it.

    Raises
    ------
    InputError
        Not a gzip tar, unsafe members, no ``model.json``, or ``dest`` exists already.
    """
    archive, dest = Path(archive), Path(dest)
    source = str(archive)
    with _staged_folder(dest) as staging:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = [(m, _member_path(m, source)) for m in tar.getmembers()]
                files = [(m, p) for m, p in members if m.isfile()]
                roots = {p.parts[0] for _, p in files if len(p.parts) == 2}
                if len(roots) > 1 or (roots and any(len(p.parts) == 1 for _, p in files)):
                    raise InputError(source, "an archive holds one model: files at the top or in one folder")
                for member, path in files:
                    handle = tar.extractfile(member)
                    with handle, (staging / path.name).open("wb") as out:
                        shutil.copyfileobj(handle, out)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(source, f"not a readable model archive ({exc.__class__.__name__}: {exc})") from exc
        if not is_model_folder(staging):
            raise InputError(source, f"the archive holds no {CARD_FILE}: not a model")
    return dest


DATASET_FILE = "dataset.json"
DATASET_FOLDERS = ("imagesTr", "labelsTr")


def pack_dataset(folder: str | os.PathLike, archive: str | os.PathLike) -> Path:
    """Write an MSD-layout dataset folder (``dataset.json``, ``imagesTr/``, ``labelsTr/``) into ``archive``."""
    folder, archive = Path(folder), Path(archive)
    if not (folder / DATASET_FILE).is_file():
        raise InputError(str(folder), f"not a labelled dataset folder (no {DATASET_FILE})")
    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    with tarfile.open(part, "w:gz") as tar:
        tar.add(folder / DATASET_FILE, arcname=DATASET_FILE)
        for sub in DATASET_FOLDERS:
            for file in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
                if file.is_file():
                    tar.add(file, arcname=f"{sub}/{file.name}")
    os.replace(part, archive)
    return archive


def unpack_dataset(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a dataset archive (see :func:`pack_dataset`) into the new folder ``dest``.

    Raises
    ------
    InputError
        Not a gzip tar, unsafe members, files outside ``imagesTr/``/``labelsTr/``, no ``dataset.json``.
    """
    archive, dest = Path(archive), Path(dest)
    source = str(archive)
    with _staged_folder(dest) as staging:
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar.getmembers():
                    path = _member_path(member, source)
                    if member.isdir():
                        continue
                    if path.parts != (DATASET_FILE,) and (len(path.parts) != 2 or path.parts[0] not in DATASET_FOLDERS):
                        raise InputError(
                            source, f"unexpected member {member.name!r} (dataset.json, imagesTr/, labelsTr/)"
                        )
                    (staging / path).parent.mkdir(exist_ok=True)
                    with tar.extractfile(member) as handle, (staging / path).open("wb") as out:
                        shutil.copyfileobj(handle, out)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(source, f"not a readable dataset archive ({exc.__class__.__name__}: {exc})") from exc
        if not (staging / DATASET_FILE).is_file():
            raise InputError(source, f"the archive holds no {DATASET_FILE}")
    return dest
