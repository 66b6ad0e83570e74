"""Who is calling, and what their role allows: helpers for the routes (``server.users`` keeps the accounts)."""

from __future__ import annotations

from fastapi import Request

from napari_uqseg.core.errors import InputError
from napari_uqseg.server.users import User, Users

#: job kinds only a maintainer may start (a reader may fine-tune and evaluate)
MAINTAINER_JOBS = ("train",)
BEARER = "Bearer "


class ForbiddenError(InputError):
    """The caller's role does not allow this (HTTP 403)."""


def user_of(request: Request, users: Users) -> User | None:
    """The user whose bearer token the request carries, or ``None``."""
    header = request.headers.get("Authorization") or ""
    if not header.startswith(BEARER) or not header[len(BEARER) :].strip():
        return None
    return users.authenticate(header[len(BEARER) :].strip())


def actor(request: Request) -> str:
    """Name of the authenticated caller (recorded with what they do)."""
    return request.state.user.name


def require_maintainer(request: Request) -> None:
    """Raise ``ForbiddenError`` unless the caller is a maintainer."""
    user: User = request.state.user
    if not user.is_maintainer:
        raise ForbiddenError("role", f"user {user.name!r} is a {user.role}; this needs the maintainer role")
