r"""Sanitize rendered signature HTML to what mail clients render (nh3, Rust's ammonia).

Runs when a signature is rendered (catalog check, publish, the embedded store's
compile, preview), never per message: the milter only reads the stored result.

Kept: layout tables, text formatting, ``style`` with the properties signatures use
(no ``background``/``url()``), ``<img>`` whose src is ``https://HOST…`` or ``cid:…``,
``<a>`` whose href is ``https://HOST…``, ``http://HOST…``, ``mailto:…`` or ``tel:…``
(:func:`url_allowed`; ``catalog check`` applies the same rule to templates).
Removed: scripts and styles with their content, event handlers, forms, frames,
comments, every other URL: ``javascript:``/``data:``/``vbscript:``, relative and
fragment-only ones (a signature has no base to resolve them against), protocol-relative
``//host/…`` and UNC ``\\host\share`` references (Outlook on Windows connects to a UNC
image's host), anything with a backslash, a control character or credentials before
the host (no ``data:`` images either: Outlook and Gmail block them; embed as ``cid:``).
"""

from __future__ import annotations

import re

import nh3

TAGS = frozenset(
    {
        "a", "abbr", "b", "big", "blockquote", "br", "caption", "center", "code", "col",
        "colgroup", "div", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "li", "ol", "p", "pre", "s", "small", "span", "strike", "strong", "sub",
        "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
GENERIC_ATTRIBUTES = frozenset(
    {"align", "bgcolor", "class", "dir", "height", "lang", "style", "title", "valign", "width"}
)
ATTRIBUTES = {
    "*": set(GENERIC_ATTRIBUTES),
    "a": {"href", "name"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "table": {"border", "cellpadding", "cellspacing", "role"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "hr": {"color", "noshade", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
STYLE_PROPERTIES = frozenset(
    {
        "background-color", "border", "border-bottom", "border-collapse", "border-color",
        "border-left", "border-radius", "border-right", "border-spacing", "border-style",
        "border-top", "border-width", "color", "display", "font", "font-family", "font-size",
        "font-style", "font-variant", "font-weight", "height", "letter-spacing",
        "line-height", "margin", "margin-bottom", "margin-left", "margin-right",
        "margin-top", "max-width", "min-width", "padding", "padding-bottom", "padding-left",
        "padding-right", "padding-top", "text-align", "text-decoration", "text-transform",
        "vertical-align", "white-space", "width",
    }
)  # fmt: skip
LINK_SCHEMES = frozenset({"https", "http", "mailto", "tel"})
IMAGE_SCHEMES = frozenset({"https", "cid"})
# What follows each scheme's colon. http(s) needs a host (letters, digits, dots,
# hyphens, IDN; no user@ before it), then an optional port and path.
_AFTER_SCHEME = {
    "https": re.compile(r"//[\w.-]+(?::\d{1,5})?(?:[/?#][^\s]*)?"),
    "http": re.compile(r"//[\w.-]+(?::\d{1,5})?(?:[/?#][^\s]*)?"),
    "mailto": re.compile(r"[^\s/][^\s]*"),
    "tel": re.compile(r"\+?[0-9][0-9().\- ]*"),
    "cid": re.compile(r"[^\s/<>][^\s<>]*"),
}
_FORBIDDEN = re.compile(r"[\\\x00-\x1f\x7f]")  # a backslash (UNC) or a control character
_ACTIVE_CSS = re.compile(r"expression|url\s*\(|script\s*:|behavior|binding|@import|\\", re.I)
CONTENT_REMOVED = frozenset({"script", "style", "title", "textarea", "noscript", "template"})


def url_allowed(url: str, schemes: frozenset[str]) -> bool:
    """An absolute URL with one of ``schemes`` and, where one is needed, a host."""
    value = url.strip(" ")
    scheme, colon, rest = value.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in schemes or _FORBIDDEN.search(value):
        return False
    pattern = _AFTER_SCHEME.get(scheme)
    return pattern is not None and pattern.fullmatch(rest) is not None


def _style(value: str) -> str | None:
    """Drop declarations that can run or load something (old IE ``expression()``, …)."""
    kept = [d for d in value.split(";") if d.strip() and not _ACTIVE_CSS.search(d)]
    return ";".join(kept) or None


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Per-tag URL schemes (nh3's url_schemes is one set for every tag); safe styles."""
    if name == "style":
        return _style(value)
    if tag == "a" and name == "href":
        return value if url_allowed(value, LINK_SCHEMES) else None
    if tag == "img" and name == "src":
        return value if url_allowed(value, IMAGE_SCHEMES) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(TAGS),
    clean_content_tags=set(CONTENT_REMOVED),
    attributes=ATTRIBUTES,
    attribute_filter=_attribute,
    url_schemes=set(LINK_SCHEMES | IMAGE_SCHEMES),
    filter_style_properties=set(STYLE_PROPERTIES),
    link_rel=None,
    strip_comments=True,
)


def sanitize_html(html: str) -> str:
    """``html`` with everything a mail client should not run or load removed."""
    return _CLEANER.clean(html)
