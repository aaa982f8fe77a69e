"""Wording shared by messages, reports and the command line."""

from __future__ import annotations

__all__ = ["counted"]


def counted(number: int, noun: str) -> str:
    """``"1 file"``, ``"2 files"``, ``"0 files"``: a count with its noun in agreement."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
