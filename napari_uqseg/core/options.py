"""Strict options: every option dictionary and every named choice is checked here, with one wording.

``check_known`` is the one unknown-key check (config sections, method options, fine-tune and prediction
options, job parameters); ``options_from_dict`` builds a dataclass after it; ``look_up_option`` checks one
name against its choices (a map, a TTA mode, a method).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

from napari_uqseg.core.errors import InputError

T = TypeVar("T")


def check_known(source: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise unless every key of ``given`` is in ``known``.

    Raises
    ------
    InputError
        ``source: unknown option(s) [...]; known: [...]`` (both lists sorted).
    """
    known = set(known)
    unknown = set(given) - known
    if unknown:
        raise InputError(source, f"unknown option(s) {sorted(map(str, unknown))}; known: {sorted(known)}")


def options_from_dict(cls: type[T], values: Mapping[str, Any], source: str) -> T:
    """The dataclass ``cls`` built from ``values``, after :func:`check_known` against its fields."""
    check_known(source, values, (f.name for f in fields(cls)))
    return cls(**values)


def look_up_option(source: str, value: Any, choices: Iterable[str], what: str = "choice") -> str:
    """``value`` if it is one of ``choices`` (``what`` names the kind of thing in the message).

    Raises
    ------
    InputError
        ``source: unknown <what> 'x'; known: [...]``.
    """
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise InputError(source, f"unknown {what} {str(value)[:60]!r}; known: {choices}")
    return value
