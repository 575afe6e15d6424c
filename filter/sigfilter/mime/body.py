"""Which leaves carry the message's own text (not attachments, not forwarded messages)."""

from __future__ import annotations

from .scan import Part


def _is_attachment(part: Part) -> bool:
    return part.disposition == "attachment" or part.filename


def body_leaves(root: Part) -> tuple[Part | None, Part | None]:
    """The text/plain and text/html leaves that carry the message's own text."""
    found: dict[str, Part] = {}
    _visit(root, found)
    return found.get("plain"), found.get("html")


def _visit(part: Part, found: dict[str, Part]) -> None:
    ctype = part.ctype
    if ctype.maintype == "multipart":
        if not part.children:
            return
        if ctype.subtype == "alternative":
            for child in part.children:
                _visit(child, found)
        elif ctype.subtype == "related":
            _visit(_related_root(part), found)
        else:
            _visit(part.children[0], found)
    elif ctype.type in ("text/plain", "text/html") and not _is_attachment(part):
        if ctype.subtype == "html":
            found["html"] = part  # the last HTML alternative is the richest
        else:
            found.setdefault("plain", part)


def _related_root(part: Part) -> Part:
    start = part.ctype.param("start")
    if start:
        for child in part.children:
            cid = child.headers.get("content-id")
            if cid and cid.value.strip() == start.strip():
                return child
    return part.children[0]
