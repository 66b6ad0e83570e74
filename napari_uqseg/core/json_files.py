"""Reading a JSON file a user or an earlier run wrote, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import InputError


def read_json(path: str | Path, missing: str = "file does not exist") -> Any:
    """The parsed content of ``path``.

    Raises
    ------
    InputError
        No such file (``missing`` says what to do), or invalid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"invalid JSON ({exc})") from exc
