"""Read a catalog directory into :mod:`model` objects, collecting every problem found.

Layout (one folder per tenant; the folder name is the tenant's key)::

    CATALOG/tenants/<key>/tenant.toml                 settings (see README)
    CATALOG/tenants/<key>/users.csv                   email + directory fields
    CATALOG/tenants/<key>/rules.toml                  [[rule]] tables, first match wins
    CATALOG/tenants/<key>/templates/<set>/default.html, default.txt, reply.html, reply.txt
    CATALOG/tenants/<key>/banners/<name>.html, <name>.txt
    CATALOG/tenants/<key>/images/<file>.png|jpg|gif
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tomllib
from pathlib import Path
from typing import Any

from ..address import AddressError, canonical_address, canonical_domain
from ..defaults import (
    CLIENT_POLICIES,
    DEFAULT_CLIENT_SIGNATURE,
    DEFAULT_MARKER,
    DEFAULT_TNEF,
    DKIM_DEFAULT_POLICY,
    GRAPH_AUTHORITY,
    GRAPH_URL,
    MODES,
    TNEF_MODES,
)
from ..dkim.keys import KeyFileError, check_key_mode
from ..dkim.sign import DKIM_POLICIES
from ..placement.admintext import MAX_PATTERN, literal_source
from .model import (
    SCOPES,
    TEMPLATE_FILES,
    Banner,
    Catalog,
    GraphSettings,
    Image,
    Rule,
    Source,
    TemplateSet,
    Tenant,
)

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
DEFAULT_MAX_IMAGE_BYTES = 100 * 1024
_TENANT_KEYS = {
    "name", "domains", "mode", "marker", "plain_to_html", "return_host", "tenant_id",
    "images", "image_base_url", "max_image_bytes", "internal_domains", "dkim", "arc", "tnef",
    "graph", "client_signature", "replace_texts", "replace_patterns",
}  # fmt: skip
_DKIM_KEYS = {"policy", "selector", "domain", "key_file"}
_ARC_KEYS = {"enabled", "authserv_id", "selector", "domain", "key_file"}
_GRAPH_KEYS = {
    "client_id", "certificate_file", "client_secret_file", "authority", "graph_url",
    "photos", "photo_size", "max_photo_bytes",
}  # fmt: skip
_PHOTO_SIZES = ("48x48", "64x64", "96x96", "120x120", "240x240", "360x360", "432x432",
                "504x504", "648x648")  # fmt: skip
_DNS_LABELS = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_RULE_KEYS = {
    "name", "users", "groups", "departments", "domains", "recipients", "template",
    "banner", "banner_start", "banner_end", "action",
}  # fmt: skip


class CatalogError(Exception):
    """The catalog has problems; each is "file[:line]: what is wrong"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Problems(list[str]):
    def add(self, path: Path, message: str, line: int | None = None) -> None:
        self.append(f"{path}{f':{line}' if line else ''}: {message}")


def load_catalog(root: Path) -> Catalog:
    """Load and validate the structure of a catalog; raise CatalogError listing problems."""
    problems = _Problems()
    tenants_dir = root / "tenants"
    if not tenants_dir.is_dir():
        raise CatalogError([f"{root}: not a catalog (no tenants/ folder)"])
    tenants: dict[str, Tenant] = {}
    for folder in sorted(p for p in tenants_dir.iterdir() if p.is_dir()):
        tenant = _load_tenant(folder, problems)
        if tenant is not None:
            tenants[tenant.key] = tenant
    _check_domains(tenants, problems)
    if not tenants and not problems:
        problems.add(tenants_dir, "no tenant folders")
    if problems:
        raise CatalogError(problems)
    return Catalog(root, tenants)


def _check_domains(tenants: dict[str, Tenant], problems: _Problems) -> None:
    owner: dict[str, str] = {}
    for tenant in tenants.values():
        for domain in tenant.domains:
            if domain in owner:
                problems.add(
                    tenant.path / "tenant.toml", f"domain {domain} also belongs to {owner[domain]}"
                )
            owner[domain] = tenant.key


def _read_toml(path: Path, problems: _Problems) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        problems.add(path, "missing")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.add(path, str(exc))
    return None


def _strings(value: Any, path: Path, key: str, problems: _Problems) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(path, f"{key} must be a list of strings")
        return ()
    return tuple(v.strip().lower() for v in value if v.strip())


def _domains(value: Any, path: Path, key: str, problems: _Problems) -> tuple[str, ...]:
    """Sender or recipient domains in their canonical form (address.py), as Postfix's
    maps and the milter's lookups use them; one that has none is a problem."""
    out = []
    for name in _strings(value, path, key, problems):
        try:
            out.append(canonical_domain(name))
        except AddressError as exc:
            problems.add(path, f"{key}: {exc.detail}")
    return tuple(dict.fromkeys(out))


def _users(value: Any, path: Path, problems: _Problems) -> tuple[str, ...]:
    out = []
    for email in _strings(value, path, "users", problems):
        try:
            out.append(canonical_address(email).text)
        except AddressError as exc:
            problems.add(path, f"users: {email!r}: {exc.detail}")
    return tuple(out)


def _load_tenant(folder: Path, problems: _Problems) -> Tenant | None:
    path = folder / "tenant.toml"
    conf = _read_toml(path, problems)
    if conf is None:
        return None
    for key in sorted(set(conf) - _TENANT_KEYS):
        problems.add(path, f"unknown setting {key!r}")
    mode = conf.get("mode", "full")
    if mode not in MODES:
        problems.add(path, f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        return None
    images_mode = conf.get("images", "link")
    if images_mode not in ("link", "embed"):
        problems.add(path, f"images must be 'link' or 'embed', not {images_mode!r}")
        return None
    tnef = conf.get("tnef", DEFAULT_TNEF)
    if tnef not in TNEF_MODES:
        problems.add(path, f"tnef must be one of {', '.join(TNEF_MODES)}, not {tnef!r}")
        return None
    domains = _domains(conf.get("domains", [folder.name]), path, "domains", problems)
    users, columns = _load_users(folder / "users.csv", problems)
    return Tenant(
        key=folder.name,
        name=str(conf.get("name", folder.name)),
        domains=domains,
        mode=mode,
        marker=str(conf.get("marker", DEFAULT_MARKER)),
        plain_to_html=bool(conf.get("plain_to_html", False)),
        return_host=str(conf.get("return_host", "")),
        tenant_id=str(conf.get("tenant_id", "")),
        images_mode=images_mode,
        image_base_url=str(conf.get("image_base_url", "")).rstrip("/"),
        max_image_bytes=int(conf.get("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES)),
        internal_domains=_domains(
            conf.get("internal_domains", list(domains)), path, "internal_domains", problems
        ),
        path=folder,
        templates=_load_templates(folder / "templates", problems),
        banners=_load_banners(folder / "banners", problems),
        images=_load_images(folder / "images", problems),
        users=users,
        user_columns=columns,
        rules=_load_rules(folder / "rules.toml", problems),
        tnef=tnef,
        graph=_load_graph(conf, path, problems),
        **_load_auth(conf, path, domains, problems),
        **_load_replace(conf, path, problems),
    )


# -- the client's signature and the admin's texts -----------------------------------------


def _load_replace(conf: dict[str, Any], path: Path, problems: _Problems) -> dict[str, Any]:
    """client_signature, replace_texts and replace_patterns (checked here, once)."""
    policy = conf.get("client_signature", DEFAULT_CLIENT_SIGNATURE)
    if policy not in CLIENT_POLICIES:
        choices = " or ".join(repr(p) for p in CLIENT_POLICIES)
        problems.add(path, f"client_signature must be {choices}, not {policy!r}")
        policy = DEFAULT_CLIENT_SIGNATURE
    sources = [literal_source(t) for t in _texts(conf, "replace_texts", path, problems)]
    for pattern in _texts(conf, "replace_patterns", path, problems):
        problem = _pattern_problem(pattern)
        if problem:
            problems.add(path, f"replace_patterns: {pattern!r}: {problem}")
        else:
            sources.append(pattern)
    return {"client_signature": policy, "replace_texts": tuple(sources)}


def _texts(conf: dict[str, Any], key: str, path: Path, problems: _Problems) -> list[str]:
    value = conf.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(path, f"{key} must be a list of non-empty strings")
        return []
    too_long = [v for v in value if len(v) > MAX_PATTERN]
    for v in too_long:
        problems.add(path, f"{key}: {v[:40]!r}… is longer than {MAX_PATTERN} characters")
    return [v for v in value if len(v) <= MAX_PATTERN]


def _pattern_problem(pattern: str) -> str:
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        return f"not a regular expression ({exc})"
    if rx.fullmatch("") or rx.fullmatch(" "):
        return "matches empty text (it would match everywhere)"
    return ""


# -- [dkim] and [arc] -------------------------------------------------------------------


class _TableLines:
    """Line numbers of a tenant.toml table and its keys, for FILE:LINE problems."""

    def __init__(self, path: Path) -> None:
        self.lines = path.read_text("utf-8", errors="replace").splitlines()

    def of(self, table: str, key: str | None = None) -> int:
        start = next((n for n, t in enumerate(self.lines, 1) if t.strip() == f"[{table}]"), 0)
        if not start or key is None:
            return start
        for n in range(start, len(self.lines)):
            text = self.lines[n].strip()
            if text.startswith("["):
                break
            if re.match(rf"{re.escape(key)}\s*=", text):
                return n + 1
        return start


def _table(conf: dict[str, Any], name: str, keys: set[str], path: Path, lines: _TableLines,
           problems: _Problems) -> dict[str, Any]:  # fmt: skip
    table = conf.get(name, {})
    if not isinstance(table, dict):
        problems.add(path, f"{name} must be a table ([{name}])", lines.of(name))
        return {}
    for key in sorted(set(table) - keys):
        problems.add(path, f"unknown [{name}] setting {key!r}", lines.of(name, key))
    return table


def _name(table: dict[str, Any], table_name: str, key: str, default: str, path: Path,
          lines: _TableLines, problems: _Problems) -> str:  # fmt: skip
    """A selector, domain or authserv-id: DNS labels only (they go into headers)."""
    value = table.get(key, default)
    if not isinstance(value, str) or (value and not _DNS_LABELS.fullmatch(value)):
        problems.add(path, f"[{table_name}] {key} must be a DNS name, not {value!r}",
                     lines.of(table_name, key))  # fmt: skip
        return ""
    return value.lower()


def _key_file(table: dict[str, Any], table_name: str, default: str, path: Path,
              lines: _TableLines, problems: _Problems) -> str:  # fmt: skip
    """Absolute key path; its mode is checked when the file is here (it may live only
    on the milter hosts: the milter checks again before it signs)."""
    value = table.get("key_file", default)
    if not isinstance(value, str):
        line = lines.of(table_name, "key_file")
        problems.add(path, f"[{table_name}] key_file must be a path", line)
        return ""
    if not value:
        return ""
    key = Path(value) if Path(value).is_absolute() else path.parent / value
    if key.exists():
        try:
            check_key_mode(key)
        except KeyFileError as exc:
            problems.add(path, f"[{table_name}] key_file {exc}", lines.of(table_name, "key_file"))
    return str(key)


def _load_auth(
    conf: dict[str, Any], path: Path, domains: tuple[str, ...], problems: _Problems
) -> dict[str, Any]:
    """The [dkim] and [arc] tables as Tenant fields."""
    if "dkim" not in conf and "arc" not in conf:
        return {}
    lines = _TableLines(path)
    dkim = _table(conf, "dkim", _DKIM_KEYS, path, lines, problems)
    arc = _table(conf, "arc", _ARC_KEYS, path, lines, problems)
    policy = dkim.get("policy", DKIM_DEFAULT_POLICY)
    if policy not in DKIM_POLICIES:
        problems.add(path, f"[dkim] policy must be one of {', '.join(DKIM_POLICIES)}, not "
                     f"{policy!r}", lines.of("dkim", "policy"))  # fmt: skip
        policy = DKIM_DEFAULT_POLICY
    first = domains[0] if domains else ""
    selector = _name(dkim, "dkim", "selector", "", path, lines, problems)
    domain = _name(dkim, "dkim", "domain", first, path, lines, problems)
    key_file = _key_file(dkim, "dkim", "", path, lines, problems)
    if policy == "resign" and not (selector and key_file):
        problems.add(path, "[dkim] policy = \"resign\" needs selector and key_file",
                     lines.of("dkim", "policy"))  # fmt: skip
    enabled = arc.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.add(path, "[arc] enabled must be true or false", lines.of("arc", "enabled"))
        enabled = False
    authserv_id = _name(arc, "arc", "authserv_id", "", path, lines, problems)
    arc_selector = _name(arc, "arc", "selector", selector, path, lines, problems)
    arc_domain = _name(arc, "arc", "domain", domain, path, lines, problems)
    arc_key = _key_file(arc, "arc", key_file, path, lines, problems)
    if enabled and not (authserv_id and arc_selector and arc_domain and arc_key):
        problems.add(path, "[arc] enabled needs authserv_id and a key (selector, key_file: "
                     "its own or [dkim]'s)", lines.of("arc", "enabled"))  # fmt: skip
    return {
        "dkim_policy": policy, "dkim_selector": selector, "dkim_domain": domain,
        "dkim_key_file": key_file, "arc": enabled, "arc_authserv_id": authserv_id,
        "arc_selector": arc_selector, "arc_domain": arc_domain, "arc_key_file": arc_key,
    }  # fmt: skip


# -- [graph] ----------------------------------------------------------------------------


def _https_url(table: dict[str, Any], key: str, default: str, path: Path, lines: _TableLines,
               problems: _Problems) -> str:  # fmt: skip
    value = table.get(key, default)
    if not isinstance(value, str) or not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?/?", value):
        problems.add(path, f"[graph] {key} must be an https URL with only a host, like "
                     f"{default!r}, not {value!r}", lines.of("graph", key))  # fmt: skip
        return default
    return value.rstrip("/")


def _graph_file(table: dict[str, Any], key: str, path: Path, lines: _TableLines,
                problems: _Problems) -> str:  # fmt: skip
    value = table.get(key, "")
    if not isinstance(value, str):
        problems.add(path, f"[graph] {key} must be a path", lines.of("graph", key))
        return ""
    return str(value if not value or Path(value).is_absolute() else path.parent / value)


def _load_graph(conf: dict[str, Any], path: Path, problems: _Problems) -> GraphSettings | None:
    """[graph]: the app registration `users sync` signs in as. The credential file is
    checked by `catalog check` and doctor (it may live only on the node that syncs)."""
    if "graph" not in conf:
        return None
    lines = _TableLines(path)
    table = _table(conf, "graph", _GRAPH_KEYS, path, lines, problems)
    client_id = table.get("client_id", "")
    if not isinstance(client_id, str) or not client_id.strip():
        problems.add(path, "[graph] client_id is required: the app registration's "
                     "Application (client) ID", lines.of("graph"))  # fmt: skip
        return None
    if not str(conf.get("tenant_id", "")).strip():
        problems.add(path, "[graph] needs the tenant's tenant_id (the Entra tenant it reads)",
                     lines.of("graph"))  # fmt: skip
    cert = _graph_file(table, "certificate_file", path, lines, problems)
    secret = _graph_file(table, "client_secret_file", path, lines, problems)
    if bool(cert) == bool(secret):
        problems.add(path, "[graph] needs exactly one of certificate_file (preferred) and "
                     "client_secret_file", lines.of("graph"))  # fmt: skip
    photos, size = table.get("photos", False), table.get("photo_size", "96x96")
    if not isinstance(photos, bool):
        problems.add(path, "[graph] photos must be true or false", lines.of("graph", "photos"))
    if size not in _PHOTO_SIZES:
        problems.add(path, f"[graph] photo_size must be one of {', '.join(_PHOTO_SIZES)}",
                     lines.of("graph", "photo_size"))  # fmt: skip
    cap = table.get("max_photo_bytes", 0)
    if not isinstance(cap, int) or cap < 0:
        problems.add(path, "[graph] max_photo_bytes must be a number of bytes",
                     lines.of("graph", "max_photo_bytes"))  # fmt: skip
        cap = 0
    return GraphSettings(
        client_id=client_id.strip(),
        certificate_file=cert,
        client_secret_file=secret,
        authority=_https_url(table, "authority", GRAPH_AUTHORITY, path, lines, problems),
        graph_url=_https_url(table, "graph_url", GRAPH_URL, path, lines, problems),
        photos=photos is True,
        photo_size=str(size),
        max_photo_bytes=cap,
    )


def _load_users(
    path: Path, problems: _Problems
) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    if not path.exists():
        return {}, ()
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, f"cannot read: {exc}")
        return {}, ()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = tuple(reader.fieldnames or ())
    if "email" not in columns:
        problems.add(path, "the first row must name the columns, one of them 'email'", 1)
        return {}, columns
    users: dict[str, dict[str, str]] = {}
    for row in reader:
        email = (row.get("email") or "").strip().lower()
        try:
            key = canonical_address(email).text  # what the milter looks up
        except AddressError as exc:
            problems.add(path, f"not an email address: {email!r} ({exc.detail})", reader.line_num)
            continue
        users[key] = {k: _clean(v) for k, v in row.items() if k}
        users[key]["email"] = email
    return users, columns


def _clean(value: str | list[str] | None) -> str:
    """Field values are single lines: control characters would let a value add lines."""
    if not isinstance(value, str):
        return ""
    if not value.isprintable():  # the per-character pass only when needed (~10x faster)
        value = "".join(c if c.isprintable() else " " for c in value)
    return " ".join(value.split())


def _load_templates(folder: Path, problems: _Problems) -> dict[str, TemplateSet]:
    sets: dict[str, TemplateSet] = {}
    if not folder.is_dir():
        problems.add(folder, "missing (a tenant needs templates/default/)")
        return sets
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = {
            name: _source(sub / name, problems) for name in TEMPLATE_FILES if (sub / name).exists()
        }
        loaded = {k: v for k, v in files.items() if v is not None}
        for need in ("default.html", "default.txt"):
            if need not in files:
                problems.add(sub, f"missing {need}")
        sets[sub.name] = TemplateSet(sub.name, loaded)
    if "default" not in sets:
        problems.add(folder, "missing the 'default' template set (templates/default/)")
    return sets


def _source(path: Path, problems: _Problems) -> Source | None:
    try:
        return Source(path, path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, f"cannot read: {exc}")
        return None


def _load_banners(folder: Path, problems: _Problems) -> dict[str, Banner]:
    if not folder.is_dir():
        return {}
    names = sorted({p.stem for p in folder.iterdir() if p.suffix in (".html", ".txt")})
    banners = {}
    for name in names:
        html, text = folder / f"{name}.html", folder / f"{name}.txt"
        banners[name] = Banner(
            name,
            _source(html, problems) if html.exists() else None,
            _source(text, problems) if text.exists() else None,
        )
    return banners


PHOTOS_DIR = "photos"  # images/photos/<Graph id>.jpg: users' photos from `users sync`


def _load_images(folder: Path, problems: _Problems, prefix: str = "") -> dict[str, Image]:
    """images/*, and images/photos/* named "photos/<file>" (users' photos)."""
    if not folder.is_dir():
        return {}
    images = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        ctype = IMAGE_TYPES.get(path.suffix.lower())
        if ctype is None:
            problems.add(path, "not an image type mail clients show (png, jpg, gif)")
            continue
        images[prefix + path.name] = Image(prefix + path.name, path, ctype, path.read_bytes())
    if not prefix:
        images |= _load_images(folder / PHOTOS_DIR, problems, f"{PHOTOS_DIR}/")
    return images


def _load_rules(path: Path, problems: _Problems) -> tuple[Rule, ...]:
    if not path.exists():
        return ()
    conf = _read_toml(path, problems)
    if conf is None:
        return ()
    tables = conf.get("rule", [])
    if set(conf) - {"rule"} or not isinstance(tables, list):
        problems.add(path, "expected only [[rule]] tables")
        return ()
    lines = _rule_lines(path)
    rules = []
    for n, table in enumerate(tables):
        rule = _rule(table, path, lines[n] if n < len(lines) else 0, problems)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule_lines(path: Path) -> list[int]:
    text = path.read_text("utf-8", errors="replace")
    return [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "[[rule]]"]


def _date(value: Any, path: Path, line: int, key: str, problems: _Problems) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    problems.add(path, f"{key} must be a date like 2026-12-31", line)
    return None


def _rule(table: dict[str, Any], path: Path, line: int, problems: _Problems) -> Rule | None:
    for key in sorted(set(table) - _RULE_KEYS):
        problems.add(path, f"unknown rule setting {key!r}", line)
    name = table.get("name")
    if not isinstance(name, str) or not name:
        problems.add(path, "every rule needs a name", line)
        return None
    scope = table.get("recipients", "all")
    action = table.get("action", "sign")
    if scope not in SCOPES:
        problems.add(path, f"recipients must be one of {', '.join(SCOPES)}", line)
        return None
    if action not in ("sign", "skip"):
        problems.add(path, "action must be 'sign' or 'skip'", line)
        return None
    return Rule(
        name=name,
        line=line,
        users=_users(table.get("users", []), path, problems),
        groups=_strings(table.get("groups", []), path, "groups", problems),
        departments=_strings(table.get("departments", []), path, "departments", problems),
        domains=_domains(table.get("domains", []), path, "domains", problems),
        recipients=scope,
        template=str(table.get("template", "default")),
        banner=table.get("banner"),
        banner_start=_date(table.get("banner_start"), path, line, "banner_start", problems),
        banner_end=_date(table.get("banner_end"), path, line, "banner_end", problems),
        action=action,
    )
