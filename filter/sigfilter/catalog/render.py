"""Render a tenant's templates for one user in Jinja2's sandbox.

- HTML templates autoescape every field; text templates get single-line field values
  (the loader strips control characters), so a field can add neither markup nor lines.
- A template line whose fields are all empty disappears (write one HTML block per
  line: ``<tr><td>M {{ mobile }}</td></tr>`` vanishes for a user without a mobile).
- Rendered HTML is sanitized (sanitize.py, nh3) to what mail clients render.
- ``{{ image("logo.png") }}`` gives the image's URL (tenant ``images = "link"``) or a
  ``cid:`` reference to an embedded copy (``images = "embed"``).
- Errors name the template file and line.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from jinja2 import BaseLoader, Environment, TemplateError, TemplateNotFound, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from .fields import FIELD_NAMES
from .model import Image, Source, Tenant
from .sanitize import sanitize_html

_EXPR = re.compile(r"{{(.*?)}}")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")


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
