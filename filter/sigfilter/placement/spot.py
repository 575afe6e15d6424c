"""The result of placement: where in a decoded part the signature goes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .clientsig import ClientSig


class Kind(IntEnum):
    """Placement kinds, in order of preference (the lower the value, the stronger)."""

    MARKER = 1
    CLIENT = 2  # the signature the mail client inserted: replaced, never a second one
    FOOTER = 3
    QUOTE = 4
    END = 5

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
    client: ClientSig | None = None  # the client's own signature (HTML), when found

    def best(self) -> Spot:
        return self.found[min(self.found)]

    def get(self, kind: Kind) -> Spot | None:
        return self.found.get(kind)
