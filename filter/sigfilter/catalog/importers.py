"""Directory fields from Microsoft 365: the admin centre CSV export and Graph ``/users``.

Both map onto the catalog's field names (:mod:`fields`); ``diff_users`` reports what an
import changes and ``to_catalog_csv`` writes the tenant's ``users.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .fields import FIELD_NAMES


class DirectoryImportError(ValueError):
    """The file is not a user export we can read; the message says why."""


@dataclass(frozen=True, slots=True)
class ImportedUsers:
    users: dict[str, dict[str, str]]  # email -> {field: value}
    source: str  # "m365-csv" | "graph-json" | "catalog-csv"
    skipped: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserDiff:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    changes: dict[str, dict[str, tuple[str, str]]]  # email -> field -> (old, new)


# Admin centre column names (lower-cased, spaces collapsed) -> catalog fields.
_M365_COLUMNS = {
    "display name": "display_name",
    "first name": "given_name",
    "last name": "surname",
    "title": "job_title",
    "department": "department",
    "office": "office",
    "phone number": "phone",
    "office phone": "phone",
    "mobile phone": "mobile",
    "fax": "fax",
    "street address": "street",
    "city": "city",
    "state": "state",
    "state or province": "state",
    "postal code": "postal_code",
    "zip or postal code": "postal_code",
    "country/region": "country",
    "country or region": "country",
    "user principal name": "upn",
}
_GRAPH_FIELDS = {
    "displayName": "display_name",
    "givenName": "given_name",
    "surname": "surname",
    "jobTitle": "job_title",
    "department": "department",
    "companyName": "company",
    "officeLocation": "office",
    "mobilePhone": "mobile",
    "faxNumber": "fax",
    "streetAddress": "street",
    "city": "city",
    "state": "state",
    "postalCode": "postal_code",
    "country": "country",
    "userPrincipalName": "upn",
}
_PROXY_SPLIT = re.compile(r"[+;,\s]+")


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DirectoryImportError(
            f"{what}: not UTF-8 text (byte {exc.start}); export it again as UTF-8 CSV or JSON"
        ) from exc


def _value(value: Any) -> str:
    return " ".join(str(value).split()) if value not in (None, "") else ""


def _primary_smtp(proxies: Iterable[str]) -> str:
    for proxy in proxies:
        if proxy.startswith("SMTP:"):  # upper case marks the primary address
            return proxy[5:].strip().lower()
    return ""


def parse_directory(data: bytes, filename: str = "") -> ImportedUsers:
    """Read any supported export, telling the format from the content."""
    name = filename or "the file"
    text = _text(data, name).lstrip()
    if not text:
        raise DirectoryImportError(f"{name}: empty file")
    if text[0] in "{[":
        return parse_graph_json(data, name)
    header = next(csv.reader(io.StringIO(text)), [])
    if header and header[0].strip().lower() == "email":
        return parse_catalog_csv(data, name)
    return parse_m365_csv(data, name)


def _rows(data: bytes, name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(_text(data, name), newline=""))
    try:
        rows = [(reader.line_num, {k: v for k, v in row.items() if k}) for row in reader]
    except csv.Error as exc:
        raise DirectoryImportError(f"{name}: line {reader.line_num}: {exc}") from exc
    return list(reader.fieldnames or []), rows


def parse_m365_csv(data: bytes, name: str = "the file") -> ImportedUsers:
    columns, rows = _rows(data, name)
    mapping = {c: _M365_COLUMNS.get(" ".join(c.lower().split())) for c in columns}
    if "upn" not in mapping.values():
        raise DirectoryImportError(
            f"{name}: not a Microsoft 365 user export (no 'User principal name' column)"
        )
    proxy_col = next((c for c in columns if " ".join(c.lower().split()) == "proxy addresses"), None)
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for line, row in rows:
        fields = {field: _value(row.get(col)) for col, field in mapping.items() if field}
        proxies = _PROXY_SPLIT.split(row.get(proxy_col, "") or "") if proxy_col else []
        email = _primary_smtp(proxies) or fields.get("upn", "").lower()
        _add(users, skipped, email, fields, f"line {line}")
    return ImportedUsers(users, "m365-csv", tuple(skipped))


def parse_graph_json(data: bytes, name: str = "the file") -> ImportedUsers:
    try:
        doc = json.loads(_text(data, name))
    except json.JSONDecodeError as exc:
        raise DirectoryImportError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from exc
    items = doc.get("value") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise DirectoryImportError(f"{name}: not a Microsoft Graph /users page (no 'value' array)")
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            skipped.append(f"value[{n}]: not a user object")
            continue
        fields = {field: _value(item.get(key)) for key, field in _GRAPH_FIELDS.items()}
        phones = item.get("businessPhones") or []
        fields["phone"] = _value(phones[0]) if isinstance(phones, list) and phones else ""
        groups = item.get("groups")
        if isinstance(groups, list):
            fields["groups"] = ";".join(_value(g) for g in groups if g)
        proxies = item.get("proxyAddresses") or []
        email = (
            _value(item.get("mail")).lower()
            or _primary_smtp(p for p in proxies if isinstance(p, str))
            or fields["upn"].lower()
        )
        _add(users, skipped, email, fields, f"value[{n}]")
    return ImportedUsers(users, "graph-json", tuple(skipped))


def parse_catalog_csv(data: bytes, name: str = "the file") -> ImportedUsers:
    columns, rows = _rows(data, name)
    if "email" not in columns:
        raise DirectoryImportError(f"{name}: no 'email' column")
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for line, row in rows:
        fields = {k: _value(v) for k, v in row.items() if k != "email"}
        _add(users, skipped, _value(row.get("email")).lower(), fields, f"line {line}")
    return ImportedUsers(users, "catalog-csv", tuple(skipped))


def _add(
    users: dict[str, dict[str, str]],
    skipped: list[str],
    email: str,
    fields: dict[str, str],
    where: str,
) -> None:
    if "@" not in email:
        skipped.append(f"{where}: no email or user principal name")
        return
    if email in users:
        skipped.append(f"{where}: {email} appears again; the later row wins")
    users[email] = {"email": email, **{k: v for k, v in fields.items() if k != "email"}}


def diff_users(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> UserDiff:
    changes: dict[str, dict[str, tuple[str, str]]] = {}
    for email in sorted(old.keys() & new.keys()):
        fields = sorted(set(old[email]) | set(new[email]))
        delta = {
            f: (old[email].get(f, ""), new[email].get(f, ""))
            for f in fields
            if old[email].get(f, "") != new[email].get(f, "")
        }
        if delta:
            changes[email] = delta
    return UserDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        changed=tuple(changes),
        removed=tuple(sorted(old.keys() - new.keys())),
        changes=changes,
    )


def to_catalog_csv(users: dict[str, dict[str, str]]) -> bytes:
    present = {k for fields in users.values() for k, v in fields.items() if v}
    extra = sorted(present - set(FIELD_NAMES))
    columns = ["email"] + [f for f in FIELD_NAMES[1:] if f in present] + extra
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for email in sorted(users):
        writer.writerow([email] + [users[email].get(c, "") for c in columns[1:]])
    return out.getvalue().encode("utf-8")
