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
            _visit_mixed(part, found)
    elif ctype.type in ("text/plain", "text/html") and not _is_attachment(part):
        if ctype.subtype == "html":
            found["html"] = part  # the last HTML alternative is the richest
        else:
            found.setdefault("plain", part)


def _visit_mixed(part: Part, found: dict[str, Part]) -> None:
    """The body of a multipart/mixed: its LAST text part of each kind.

    iOS and Apple Mail send inline photos as text, image, text (the tagline at the end of
    the last text part); Gnus puts the signature in a text part after an attached
    message. Text parts after the first must be inline (a named one is an attachment)
    and have a sound header block.
    """
    _visit(part.children[0], found)
    for child in part.children[1:]:
        if not child.headers.closed or child.headers.defects:
            continue  # stray lines a bare "--B" split off an attachment, not a body part
        if child.ctype.type in ("text/plain", "text/html") and not _is_attachment(child):
            found[child.ctype.subtype] = child
        elif child.ctype.type == "multipart/alternative" and not _is_attachment(child):
            for grand in child.children:
                _visit(grand, found)


def _related_root(part: Part) -> Part:
    start = part.ctype.param("start")
    if start:
        for child in part.children:
            cid = child.headers.get("content-id")
            if cid and cid.value.strip() == start.strip():
                return child
    return part.children[0]
