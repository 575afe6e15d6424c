"""The result of placement: where in a decoded part the signature goes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    """Placement kinds, in order of preference (the lower the value, the stronger)."""

    MARKER = 1
    FOOTER = 2
    QUOTE = 3
    END = 4

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Spot:
    """Replace ``text[start:end]`` (``start == end``: insert) with the signature."""

    kind: Kind
    start: int
    end: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Spots:
    """Every placement one part offers, and where its quoted thread begins."""

    found: dict[Kind, Spot]
    quote_start: int  # len(text) when there is no quoted thread
    ours: bool  # one of our signatures already sits in the new text

    def best(self) -> Spot:
        return self.found[min(self.found)]

    def get(self, kind: Kind) -> Spot | None:
        return self.found.get(kind)
