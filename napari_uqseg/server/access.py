"""Who is calling, and what their role allows: helpers for the routes (``server.users`` keeps the accounts)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from napari_uqseg.core.errors import InputError, UQSegError
from napari_uqseg.server.users import LOCAL_USER, User, Users

#: job kinds only a maintainer may start (a reader may fine-tune and evaluate)
MAINTAINER_JOBS = ("train",)
BEARER = "Bearer "


class UnauthorizedError(UQSegError):
    """Missing or wrong bearer token (HTTP 401)."""


class ForbiddenError(InputError):
    """The caller's role does not allow this (HTTP 403)."""


def user_of(request: Request, users: Users) -> User | None:
    """The user whose bearer token the request carries, or ``None``."""
    header = request.headers.get("Authorization") or ""
    if not header.startswith(BEARER) or not header[len(BEARER) :].strip():
        return None
    return users.authenticate(header[len(BEARER) :].strip())


def token_guard(token: str | None, users: Users) -> Callable[[Request], None]:
    """The dependency every ``/v1`` route but health has: the caller's user on ``request.state.user``.

    ``token`` ``None`` (loopback ``--no-auth``) makes every caller the local user.
    """

    def require_token(request: Request) -> None:
        request.state.user = LOCAL_USER if token is None else user_of(request, users)
        if request.state.user is None:
            raise UnauthorizedError("missing or wrong bearer token (see the token file in the server's data folder)")

    return require_token


def actor(request: Request) -> str:
    """Name of the authenticated caller (recorded with what they do)."""
    return request.state.user.name


def require_maintainer(request: Request) -> None:
    """Raise ``ForbiddenError`` unless the caller is a maintainer."""
    user: User = request.state.user
    if not user.is_maintainer:
        raise ForbiddenError("role", f"user {user.name!r} is a {user.role}; this needs the maintainer role")
