"""Checks shared by the typed settings of every training command (BertSim, encoder training,
pre-training, distillation): each raises ``ValueError`` naming the field, its value and what
it may be. The fields every trainer has are checked once, in :mod:`adrecall.training_config`.
No torch import here, so command lines build their parsers quickly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PRECISIONS = ("fp32", "bf16")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is ``"fp32"`` or ``"bf16"``, else raise naming it."""
    return check_choice("precision", precision, PRECISIONS)


def check_ints(settings: Any, *names: str, minimum: int = 1, optional: bool = False) -> None:
    """Each named field is an integer >= ``minimum`` (or None when ``optional``)."""
    for name in names:
        value = getattr(settings, name)
        if optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")


def check_positive(settings: Any, *names: str) -> None:
    """Each named field is a number > 0."""
    for name in names:
        value = getattr(settings, name)
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def check_fraction(name: str, value: float, *, allow_zero: bool = True) -> None:
    """``value`` is in [0, 1) (or (0, 1) without ``allow_zero``)."""
    if not ((0 <= value < 1) if allow_zero else (0 < value < 1)):
        raise ValueError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1), got {value!r}")


def check_at_least(settings: Any, name: str, other: str, hint: str = "") -> None:
    """Field ``name`` is at least field ``other`` (e.g. a search depth and what it must yield);
    ``hint`` says what to change."""
    value, bound = getattr(settings, name), getattr(settings, other)
    if value < bound:
        raise ValueError(
            f"{name} ({value}) must be at least {other} ({bound}){'; ' + hint if hint else ''}"
        )
