"""Sanitize rendered signature HTML to what mail clients render (nh3, Rust's ammonia).

Runs when a signature is rendered (catalog check, publish, the embedded store's
compile, preview), never per message: the milter only reads the stored result.

Kept: layout tables, text formatting, ``style`` with the properties signatures use
(no ``background``/``url()``), ``<img>`` whose src is ``cid:``, ``https:`` or relative,
``<a>`` whose href is ``https:``, ``http:``, ``mailto:``, ``tel:`` or relative.
Removed: scripts and styles with their content, event handlers, forms, frames,
comments, ``javascript:``/``data:``/``vbscript:`` URLs (no ``data:`` images either:
Outlook and Gmail block them, so embed images as ``cid:`` instead).
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
_ACTIVE_CSS = re.compile(r"expression|url\s*\(|script\s*:|behavior|binding|@import|\\", re.I)
CONTENT_REMOVED = frozenset({"script", "style", "title", "textarea", "noscript", "template"})


def _scheme(url: str) -> str | None:
    """The URL's scheme, lower-cased, or None for a relative URL."""
    head = url.strip().split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    scheme, colon, _ = head.partition(":")
    return scheme.strip().lower() if colon else None


def _style(value: str) -> str | None:
    """Drop declarations that can run or load something (old IE ``expression()``, …)."""
    kept = [d for d in value.split(";") if d.strip() and not _ACTIVE_CSS.search(d)]
    return ";".join(kept) or None


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Per-tag URL schemes (nh3's url_schemes is one set for every tag); safe styles."""
    if name == "style":
        return _style(value)
    if tag == "a" and name == "href":
        scheme = _scheme(value)
        return value if scheme is None or scheme in LINK_SCHEMES else None
    if tag == "img" and name == "src":
        scheme = _scheme(value)
        return value if scheme is None or scheme in IMAGE_SCHEMES else None
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
