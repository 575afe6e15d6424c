"""Everything ``sigfilter catalog check`` verifies beyond what loading already refuses."""

from __future__ import annotations

import re

from .fields import FIELD_NAMES
from .model import Catalog, Source, Tenant
from .render import Renderer, RenderError, template_problems
from .sanitize import IMAGE_SCHEMES, LINK_SCHEMES, url_allowed

_TAG = re.compile(r"{{.*?}}|{%.*?%}", re.S)
_DUNDER = re.compile(r"__\w+__|\.mro\b|\bself\b|\bcycler\b|\bjoiner\b|\bnamespace\b|\blipsum\b")
_MAX_RENDER_PROBLEMS = 20
# href="…" / src='…' / src=… in a template line (the value as written)
_URL_ATTR = re.compile(r"""\b(href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def check_catalog(cat: Catalog, render: bool = True) -> tuple[list[str], str]:
    """(problems, one-line summary). ``render`` renders every user's signatures too."""
    problems: list[str] = []
    for tenant in cat.tenants.values():
        problems += _check_templates(tenant)
        problems += _check_rules(tenant)
        problems += _check_images(tenant)
        problems += [why for level, why in _graph_credential(tenant) if level == "bad"]
        if render and not problems:
            problems += _render_all(tenant)
    users = sum(len(t.users) for t in cat.tenants.values())
    sets = sum(len(t.templates) for t in cat.tenants.values())
    rules = sum(len(t.rules) for t in cat.tenants.values())
    summary = f"{len(cat.tenants)} tenants, {users} users, {sets} template sets, {rules} rules"
    return problems, summary


def _graph_credential(tenant: Tenant) -> list[tuple[str, str]]:
    if tenant.graph is None:
        return []
    # Imported here: it brings cryptography and requests, which most checks never need.
    from ..graph.auth import credential_problem  # noqa: PLC0415

    level, why = credential_problem(tenant.graph)
    return [(level, f"{tenant.path / 'tenant.toml'}: {why}")] if level else []


def catalog_warnings(cat: Catalog) -> list[str]:
    """What is allowed but probably not meant (printed, not refused)."""
    missing = [
        why
        for t in cat.tenants.values()
        for level, why in _graph_credential(t)
        if level == "missing"
    ]
    return missing + [
        f"{t.path / 'tenant.toml'}: no tenant_id: with the milter's default "
        'tenant_id_missing = "reject" every message of this tenant is refused; set it to '
        "the tenant's Microsoft Entra tenant ID (the X-MS-Exchange-CrossTenant-Id Exchange "
        "stamps; Azure portal, Microsoft Entra ID, Overview)"
        for t in cat.tenants.values()
        if not t.tenant_id.strip()
    ]


def _sources(tenant: Tenant) -> list[Source]:
    out = [s for ts in tenant.templates.values() for s in ts.files.values()]
    return out + [s for b in tenant.banners.values() for s in (b.html, b.text) if s]


def _check_templates(tenant: Tenant) -> list[str]:
    known = set(FIELD_NAMES) | set(tenant.user_columns) | {"image"}
    problems = []
    for src in _sources(tenant):
        for n, line in enumerate(src.text.splitlines(), 1):
            for tag in _TAG.findall(line):
                if _DUNDER.search(tag):
                    problems.append(f"{src.path}:{n}: not allowed in a template: {tag.strip()}")
            problems += [f"{src.path}:{n}: {p}" for p in _url_problems(line)]
        problems += template_problems(src, known)
    return list(dict.fromkeys(problems))


def _url_problems(line: str) -> list[str]:
    """The sanitizer's URL rule (sanitize.url_allowed) for URLs written in a template.

    A URL made from a field (``href="{{ website }}"``) is checked where the template
    fixes it: the part before the first ``{{``; the sanitizer removes what the field
    makes of it at render time.
    """
    out = []
    for name, *quoted in _URL_ATTR.findall(line):
        value = next((v for v in quoted if v), "")
        schemes = IMAGE_SCHEMES if name.lower() == "src" else LINK_SCHEMES
        fixed, templated, _ = value.partition("{{")
        if not templated and "{%" not in value:
            bad = not url_allowed(value, schemes)
        else:  # only the written prefix can be judged
            bad = fixed.lstrip().startswith(("/", "\\")) or "\\" in fixed
        if bad:
            allowed = ", ".join(sorted(schemes))
            out.append(
                f"{name}={value!r} is not allowed: only absolute {allowed} URLs "
                "(with a host for http/https), no relative, //host or \\\\host references"
            )
    return out


def _check_rules(tenant: Tenant) -> list[str]:
    problems = []
    path = tenant.path / "rules.toml"
    seen: set[str] = set()
    for rule in tenant.rules:
        if rule.name in seen:
            problems.append(f"{path}:{rule.line}: a second rule named {rule.name!r}")
        seen.add(rule.name)
        if rule.action == "sign" and rule.template not in tenant.templates:
            problems.append(f"{path}:{rule.line}: no template set {rule.template!r}")
        if rule.banner and rule.banner not in tenant.banners:
            problems.append(f"{path}:{rule.line}: no banner {rule.banner!r}")
        if rule.banner_start and rule.banner_end and rule.banner_end < rule.banner_start:
            problems.append(f"{path}:{rule.line}: banner_end is before banner_start")
    return problems


def _check_images(tenant: Tenant) -> list[str]:
    if tenant.images_mode != "embed":
        return []
    limit = tenant.max_image_bytes
    return [
        f"{img.path}: {len(img.data)} bytes is over the limit for embedded images ({limit})"
        for img in tenant.images.values()
        if len(img.data) > limit
    ]


def _render_all(tenant: Tenant) -> list[str]:
    renderer = Renderer(tenant)
    problems: list[str] = []
    for email, fields in sorted(tenant.users.items()):
        for rule in tenant.rules_for(email):
            if rule.action != "sign":
                continue
            try:
                renderer.render_set(rule.template, fields)
                if rule.banner:
                    renderer.render_banner(rule.banner, fields)
            except RenderError as exc:
                problems.append(f"{exc} (rendering for {email})")
        if len(problems) >= _MAX_RENDER_PROBLEMS:
            problems.append("… more render problems not shown")
            break
    return problems
