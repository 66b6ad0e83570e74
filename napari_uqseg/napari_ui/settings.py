"""Connection settings remembered between napari sessions, as one JSON file in the user's config folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import atomic_write_bytes

#: environment variable that moves the settings folder (tests, portable installs)
CONFIG_DIR_ENV = "UQSEG_CONFIG_DIR"
SETTINGS_FILE = "napari-settings.json"
MODES = ("local", "remote")


@dataclass
class Settings:
    """What the plugin remembers.

    Attributes
    ----------
    mode : str
        ``"local"`` (in-process engine) or ``"remote"`` (HTTP server).
    url : str
        Server address for remote mode.
    token : str
        Bearer token for remote mode (stored in a file readable by the user only).
    data_dir : str
        Data folder of the in-process engine in local mode (models, corrections, jobs; empty: the per-user default).
    model, method : str
        Last choices in the predict section.
    """

    mode: str = "local"
    url: str = "http://127.0.0.1:8765"
    token: str = ""
    data_dir: str = ""
    model: str = ""
    method: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError("mode", f"unknown connection mode {self.mode!r}; choose one of {', '.join(MODES)}")


def config_dir() -> Path:
    """Folder of the settings file: ``$UQSEG_CONFIG_DIR`` or the platform's user config folder."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_config_dir  # a napari dependency; imported late so core tests do not need it

    return Path(user_config_dir("napari-uqseg", appauthor=False))


def settings_path() -> Path:
    """Path of the settings JSON file."""
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings; defaults when the file is missing or unreadable (a broken file must not block the UI)."""
    path = path or settings_path()
    try:
        raw = json.loads(path.read_text())
        known = {f.name for f in fields(Settings)}
        return Settings(**{k: str(v) for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError):
        return Settings()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically, readable by the user only (the file may hold a token)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(asdict(settings), indent=1).encode(), mode=0o600)  # 0600 from creation
    return path
