"""Token file, bearer check, loopback-only default and id validation."""

from __future__ import annotations

import stat
import sys

import pytest

from napari_uqseg.cli import main
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.wire import check_id
from napari_uqseg.server.data_dir import safe_path
from napari_uqseg.server.security import check_bind, is_loopback, load_or_create_token, token_matches


def test_token_created_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("UQSEG_TOKEN", raising=False)
    token, created = load_or_create_token(tmp_path)
    assert created and len(token) >= 32
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == (token, False)


def test_token_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UQSEG_TOKEN", "from-the-environment-123")
    assert load_or_create_token(tmp_path) == ("from-the-environment-123", False)
    assert not (tmp_path / "token").exists()


def test_token_matches_only_exact_bearer():
    assert token_matches("Bearer secret-token", "secret-token")
    assert not token_matches("Bearer secret-tokeX", "secret-token")
    assert not token_matches("secret-token", "secret-token")
    assert not token_matches(None, "secret-token")


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


def test_public_bind_needs_token_and_tls():
    check_bind("127.0.0.1", auth=False, tls=False, allow_insecure=False)
    with pytest.raises(InputError, match="without a token"):
        check_bind("0.0.0.0", auth=False, tls=True, allow_insecure=True)
    with pytest.raises(InputError, match="ssl-certfile"):
        check_bind("0.0.0.0", auth=True, tls=False, allow_insecure=False)
    check_bind("0.0.0.0", auth=True, tls=True, allow_insecure=False)


def test_serve_refuses_public_bind_without_token(tmp_path, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--no-auth", "--data-dir", str(tmp_path)]) == 2
    assert "refuses to run without a token" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "", "x" * 65, "name.with.dots", "back\\slash"])
def test_path_like_names_are_refused(tmp_path, bad):
    with pytest.raises(InputError):
        safe_path(tmp_path, bad)


@pytest.mark.parametrize("bad", ["", "0" * 31, "0" * 33, "Z" * 32, "../" + "0" * 29])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(InputError):
        check_id(bad, "job id")


def test_ray_executor_import_guard(tmp_path, monkeypatch):
    pytest.importorskip("napari_uqseg.server.executor")
    from napari_uqseg.server.data_dir import DataDir
    from napari_uqseg.server.executor import RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed (CI installs it)
    with pytest.raises(InputError, match=r"napari-uqseg\[ray\]"):
        RayExecutor(DataDir(tmp_path / "data"))
