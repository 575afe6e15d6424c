"""Render a tenant's templates for one user in Jinja2's sandbox.

- HTML templates autoescape every field; text templates get single-line field values
  (the loader strips control characters), so a field can add neither markup nor lines.
- A template line whose fields are all empty disappears (write one HTML block per
  line: ``<tr><td>M {{ mobile }}</td></tr>`` vanishes for a user without a mobile).
- Rendered HTML is sanitized (sanitize.py, nh3) to what mail clients render.
- ``{{ image("logo.png") }}`` gives the image's URL (tenant ``images = "link"``) or a
  ``cid:`` reference to an embedded copy (``images = "embed"``).
- Templates may only show fields, test them, use a few string filters and call
  ``image()`` (``template_problems``); anything else is refused before compiling.
- Errors name the template file and line.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from jinja2 import (
    BaseLoader,
    Environment,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2.sandbox import SandboxedEnvironment

from .fields import FIELD_NAMES
from .model import Image, Source, Tenant
from .sanitize import sanitize_html

_EXPR = re.compile(r"{{(.*?)}}")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")
_GUARD_ENV = SandboxedEnvironment()


class RenderError(Exception):
    """A template could not be rendered; the message starts with "file:line:"."""


@dataclass(frozen=True, slots=True)
class Rendered:
    html: str
    text: str
    reply_html: str
    reply_text: str
    images: tuple[str, ...]  # names of the images the HTML embeds (embed mode)


def content_id(image: Image) -> str:
    """A stable Content-ID for an embedded image (changes when the image changes)."""
    digest = hashlib.sha256(image.data).hexdigest()[:16]
    return f"{digest}.{image.name}@sigfilter"


def drop_empty_lines(source: str, fields: set[str]) -> str:
    """Wrap each line that shows fields in ``{% if f1 or f2 %}…{% endif %}``.

    The ``{% endif %}`` opens the next line, so template line numbers stay right.
    """
    lines = source.split("\n")
    out = []
    for n, line in enumerate(lines):
        eol = "" if n == len(lines) - 1 else "\n"
        names = [] if "{%" in line or "{#" in line else _field_names(line, fields)
        if names:
            out.append("{% if " + " or ".join(names) + " %}" + line + eol + "{% endif %}")
        else:
            out.append(line + eol)
    return "".join(out)


def _field_names(line: str, fields: set[str]) -> list[str]:
    found: dict[str, None] = {}
    for expr in _EXPR.findall(line):
        for name in _IDENT.findall(_STRING.sub("", expr)):
            if name in fields:
                found[name] = None
    return list(found)


class _SourceLoader(BaseLoader):
    """Templates by file path, with the path as their file name (for error lines)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.mapping:
            raise TemplateNotFound(template)
        return self.mapping[template], template, lambda: True


class Renderer:
    """Renders one tenant's template sets and banners; templates compile once."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.fields = set(FIELD_NAMES) | set(tenant.user_columns)
        sources = [s for ts in tenant.templates.values() for s in ts.files.values()]
        sources += [s for b in tenant.banners.values() for s in (b.html, b.text) if s]
        mapping = {str(s.path): drop_empty_lines(s.text, self.fields) for s in sources}
        allowed = self.fields | {"image"}
        self._refused = {str(s.path): template_problems(s, allowed) for s in sources}
        loader = _SourceLoader(mapping)
        self._html = SandboxedEnvironment(
            loader=loader, autoescape=True, trim_blocks=True, keep_trailing_newline=True
        )
        self._text = SandboxedEnvironment(
            loader=loader, autoescape=False, trim_blocks=True, keep_trailing_newline=True
        )

    def render_set(self, name: str, fields: dict[str, str]) -> Rendered:
        tset = self.tenant.templates.get(name)
        if tset is None:
            raise RenderError(f"{self.tenant.path}/templates/{name}: no such template set")
        used: list[str] = []
        image = self._image_function(used)
        out = {key: self.render(src, fields, image) for key, src in tset.files.items()}
        return Rendered(
            html=out["default.html"],
            text=out["default.txt"],
            reply_html=out.get("reply.html", ""),
            reply_text=out.get("reply.txt", ""),
            images=tuple(dict.fromkeys(used)),
        )

    def render_banner(self, name: str, fields: dict[str, str]) -> tuple[str, str, tuple[str, ...]]:
        banner = self.tenant.banners.get(name)
        if banner is None:
            raise RenderError(f"{self.tenant.path}/banners/{name}: no such banner")
        used: list[str] = []
        image = self._image_function(used)
        html = self.render(banner.html, fields, image) if banner.html else ""
        text = self.render(banner.text, fields, image) if banner.text else ""
        return html, text, tuple(dict.fromkeys(used))

    def render(self, source: Source, fields: dict[str, str], image: Callable[[str], str]) -> str:
        env = self._html if source.path.suffix == ".html" else self._text
        name = str(source.path)
        if self._refused.get(name):
            raise RenderError(self._refused[name][0])
        try:
            template = env.get_template(name)
            out = template.render({**fields, "image": image}).strip("\n")
            return sanitize_html(out) if env is self._html else out
        except TemplateSyntaxError as exc:
            raise RenderError(f"{name}:{exc.lineno}: {exc.message}") from exc
        except (
            TemplateError,
            RenderError,
            ArithmeticError,
            LookupError,
            TypeError,
            ValueError,
        ) as exc:
            raise RenderError(f"{name}:{_template_line(exc, name)}: {_describe(exc)}") from exc

    def _image_function(self, used: list[str]) -> Callable[[str], str]:
        tenant = self.tenant

        def image(name: str) -> str:
            img = tenant.images.get(name)
            if img is None:
                raise RenderError(f"no image {name!r} in {tenant.path / 'images'}")
            if tenant.images_mode == "embed":
                used.append(name)
                return "cid:" + content_id(img)
            base = tenant.image_base_url
            return f"{base}/{name}" if base else name

        return image


def _template_line(exc: BaseException, name: str) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == name and frame.lineno:
            return frame.lineno
    return 0


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, TemplateError | RenderError) else f"{type(exc).__name__}: {text}"


# -- what a template may contain -------------------------------------------------------
#
# An allow-list over Jinja2's syntax tree, checked before a template is compiled (the
# sandbox alone still lets a template burn CPU and memory: ``{{ 9**9**9 }}`` is folded
# at compile time, ``{{ 'x' * 10**9 }}`` and ``|center(10**9)`` allocate a gigabyte).
# Templates show fields, test them and call ``image()``; nothing else is needed.

ALLOWED_FILTERS = frozenset(
    {
        "capitalize", "d", "default", "e", "escape", "lower", "replace", "string",
        "striptags", "title", "trim", "truncate", "upper", "urlencode",
    }
)  # fmt: skip
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "string", "number"})
ALLOWED_OPERATORS = frozenset({"+", "-"})  # on strings and small numbers: bounded
MAX_CONSTANT = 10_000
_PLAIN_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.CondExpr,
    nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Compare, nodes.Operand,
    nodes.Concat, nodes.Keyword, nodes.Assign,
)  # fmt: skip
_STATEMENTS = {
    nodes.Import: "{% import %}: templates cannot load other files",
    nodes.FromImport: "{% from … import %}: templates cannot load other files",
    nodes.Include: "{% include %}: templates cannot load other files",
    nodes.Extends: "{% extends %}: templates cannot load other files",
    nodes.Block: "{% block %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.For: "{% for %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}: fields are always escaped",
    nodes.EvalContextModifier: "{% autoescape %}: fields are always escaped",
}


def template_problems(source: Source, names: set[str]) -> list[str]:
    """Why ``source`` may not be used, as "file:line: …" lines (empty when it may).

    ``names`` are the fields and functions a template may read.
    """
    try:
        tree = _GUARD_ENV.parse(source.text)
    except TemplateSyntaxError as exc:
        return [f"{source.path}:{exc.lineno}: {exc.message}"]
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "store"}
    problems: list[str] = []
    for node in _walk(tree):
        if isinstance(node, nodes.Name) and node.name not in names | assigned:
            problems.append(f"{source.path}:{node.lineno}: unknown field {node.name!r}")
            continue
        why = _refusal(node)
        if why:
            problems.append(f"{source.path}:{node.lineno}: not allowed in a template: {why}")
    return problems


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(current.iter_child_nodes())))


def _refusal(node: nodes.Node) -> str | None:
    if isinstance(node, _PLAIN_NODES):
        if isinstance(node, nodes.Assign) and not isinstance(node.target, nodes.Name):
            return "{% set %} of anything but a name"
        return None
    for kind, why in _STATEMENTS.items():
        if isinstance(node, kind):
            return why
    if isinstance(node, nodes.Name):
        return None  # known: template_problems reported unknown names
    if isinstance(node, nodes.Const):
        value = node.value
        too_big = isinstance(value, int | float) and abs(value) > MAX_CONSTANT
        return f"the number {value!r} (over {MAX_CONSTANT})" if too_big else None
    if isinstance(node, nodes.Filter):
        return None if node.name in ALLOWED_FILTERS else f"the filter |{node.name}"
    if isinstance(node, nodes.Test):
        return None if node.name in ALLOWED_TESTS else f"the test 'is {node.name}'"
    if isinstance(node, nodes.BinExpr):
        op = node.operator
        return None if op in ALLOWED_OPERATORS else f"the operator {op}"
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        return "attribute or item access (.name, [key])"
    if isinstance(node, nodes.Call):
        ok = isinstance(node.node, nodes.Name) and node.node.name == "image"
        return None if ok and not node.kwargs and not node.dyn_args else "calls other than image()"
    return f"{type(node).__name__} expressions"
