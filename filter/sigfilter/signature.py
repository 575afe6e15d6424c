"""A sender's rendered signature, as the engine consumes it."""

from __future__ import annotations

from dataclasses import dataclass

from .placement.html import OUR_CLASS, OUR_COMMENT


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image the HTML signature shows through ``cid:``; the engine embeds it."""

    cid: str
    content_type: str
    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SenderCard:
    """The sender's directory fields, to recognise the signature their client typed.

    Outlook for Windows (classic) marks nothing on the wire: its signature is found as a
    block at the end of the new text that starts with ``name`` and carries some of
    ``details`` (title, phones, company, address …).
    """

    name: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    """Rendered signature HTML and text; the reply variant falls back to the default."""

    html: str
    text: str
    reply_html: str = ""
    reply_text: str = ""
    images: tuple[InlineImage, ...] = ()
    sender: SenderCard | None = None

    def pick(self, reply: bool) -> tuple[str, str]:
        if reply and (self.reply_html or self.reply_text):
            return self.reply_html or self.html, self.reply_text or self.text
        return self.html, self.text

    def texts(self) -> tuple[str, ...]:
        return tuple(t for t in (self.text, self.reply_text) if t.strip())


def wrap_html(html: str) -> str:
    """Wrap signature HTML in our recognisable container (class + comment marker).

    Both marks survive most clients: Outlook rewrites ids and strips comments when
    replying but keeps classes; others keep comments.
    """
    return f'<div class="{OUR_CLASS}">{OUR_COMMENT}{html}</div>'
