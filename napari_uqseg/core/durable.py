"""Durable and private file operations: directory fsync after renames, folder fsync before a ledger row.

A rename is durable only once the directory entry is on disk (``fsync`` of the directory); a copied
folder only once each file and each directory in it is. Files holding patient data are 0600 and
folders 0700 (``make_private``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def fsync_dir(path: str | os.PathLike) -> None:
    """``fsync`` a directory so the renames and creations inside it survive a power loss (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """``os.replace`` then ``fsync`` of the target's directory (and the source's, if another one)."""
    os.replace(source, target)
    fsync_dir(Path(target).parent)
    if Path(source).parent.resolve() != Path(target).parent.resolve():
        fsync_dir(Path(source).parent)


def fsync_tree(root: str | os.PathLike) -> None:
    """``fsync`` every file and directory under ``root`` (a copied model or prediction folder)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def make_private(root: str | os.PathLike, recursive: bool = True) -> None:
    """Take group and other permissions off ``root`` (and, if ``recursive``, everything under it).

    Directories become 0700 and files lose every group/other bit (0600 for a plain 0644 file).
    Symbolic links are left alone.
    """
    paths = [Path(root)]
    if recursive and Path(root).is_dir():
        paths += [Path(folder) / name for folder, dirs, files in os.walk(root) for name in (*dirs, *files)]
    for path in paths:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = PRIVATE_DIR if stat.S_ISDIR(st.st_mode) else stat.S_IMODE(st.st_mode) & 0o700
        if stat.S_IMODE(st.st_mode) != mode:
            path.chmod(mode)
