"""Exceptions shared by every layer; each message names the input and the problem."""

from __future__ import annotations


class UQSegError(Exception):
    """Base class of every error napari-uqseg raises on purpose."""


class InputError(UQSegError, ValueError):
    """Bad user input: a file, an array, a name or an option.

    Parameters
    ----------
    source : str
        What was wrong (a file path, an option name, ``"image"`` ...).
    problem : str
        What is wrong with it, in plain words.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class CancelledError(UQSegError):
    """Raised by a progress callback to stop a prediction or a training run."""


class NotFoundError(InputError):
    """A named thing (model, version, image, prediction, job) does not exist; HTTP 404 on the wire."""


class ConflictError(InputError):
    """A request that contradicts stored state (a reused idempotency key with another payload); HTTP 409."""
