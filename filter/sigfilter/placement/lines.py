"""Line primitives the text placements share (pure)."""

from __future__ import annotations

import re

# What a text/plain rendering of a signature may carry besides its words: image
# placeholders ([cid:...], [image: ...], [1]) and bracketed links. A line of only these
# counts as blank.
SKIPPABLE = re.compile(r"\[(?:cid:[^\]\s]*|image:[^\]]*|\d{1,3})\]|<(?:https?://|mailto:)[^>\s]*>")


def line_spans(text: str, start: int, stop: int) -> list[tuple[int, int]]:
    """(start, end of content) of each line in ``text[start:stop]``; CR and LF excluded."""
    out: list[tuple[int, int]] = []
    pos = start
    while pos < stop:
        nl = text.find("\n", pos, stop)
        end = stop if nl < 0 else nl
        content = end - 1 if end > pos and text[end - 1] == "\r" else end
        out.append((pos, content))
        pos = stop if nl < 0 else nl + 1
    return out
