"""Directory fields from Microsoft 365: the admin centre CSV export and Graph ``/users``.

Every format maps onto the catalog's field names (:mod:`.fields`). ``diff_users``
reports what an import changes and ``to_catalog_csv`` writes the tenant's
``users.csv``. Pure functions over bytes: no file or network access here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .fields import FIELD_NAMES


class DirectoryImportError(ValueError):
    """The file is not a user export we can read; the message says what and where."""


@dataclass(frozen=True, slots=True)
class ImportedUsers:
    users: dict[str, dict[str, str]]  # email (lower-case) -> {field: value}, "" when empty
    source: str  # "m365-csv" | "graph-json" | "catalog-csv"
    skipped: tuple[str, ...] = ()  # notes on rows left out or overridden
    # Graph's @odata.nextLink: this file is one page of a longer list, so users on
    # later pages are missing (replacing users.csv with it would remove them).
    next_page: str = ""


@dataclass(frozen=True, slots=True)
class UserDiff:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    changes: dict[str, dict[str, tuple[str, str]]]  # email -> field -> (old, new)


def _header_key(name: str) -> str:
    """Header names compare without case, spaces or underscores ("User principal name",
    "UserPrincipalName" and "userPrincipalName" are one column)."""
    return re.sub(r"[\s_]+", "", name).lower()


# Admin centre "Export users" names, older admin centre names, and the property names
# that PowerShell and the Entra "Download users" CSV use for the same thing.
_M365_COLUMNS: dict[str, str] = {
    _header_key(column): field
    for field, columns in {
        "display_name": ("Display name",),
        "given_name": ("First name", "givenName"),
        "surname": ("Last name", "surname"),
        "job_title": ("Title", "jobTitle"),
        "department": ("Department",),
        "company": ("Company", "companyName"),
        "office": ("Office", "officeLocation", "physicalDeliveryOfficeName"),
        "phone": ("Phone number", "Office phone", "telephoneNumber"),
        "mobile": ("Mobile Phone", "mobile"),
        "fax": ("Fax", "faxNumber"),
        "street": ("Street address",),
        "city": ("City",),
        "state": ("State", "State or province"),
        "postal_code": ("Postal code", "ZIP or postal code"),
        "country": ("Country/Region", "Country or region", "Country"),
        "upn": ("User principal name",),
    }.items()
    for column in columns
}
_PROXY_COLUMN = _header_key("Proxy addresses")
_MAIL_COLUMN = _header_key("mail")

_GRAPH_FIELDS: dict[str, str] = {
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

# The export joins proxy addresses with "+" (or ";"), but "+" is also legal inside an
# address (jo+news@…), so split only where the next entry's "type:" prefix starts.
_PROXY_SEPARATOR = re.compile(r"[\s+;,]+(?=[A-Za-z][A-Za-z0-9]*:)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

# What people upload by mistake, told apart by their first bytes.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "it is a PNG image"),
    (b"\xff\xd8\xff", "it is a JPEG image"),
    (b"GIF8", "it is a GIF image"),
    (b"%PDF", "it is a PDF document"),
    (b"PK\x03\x04", "it is a ZIP archive, perhaps an Excel workbook: save it as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "it is an old Office file (.xls?): save it as 'CSV UTF-8'"),
    (b"\xff\xfe", "it is UTF-16 text: save it as 'CSV UTF-8'"),
    (b"\xfe\xff", "it is UTF-16 text: save it as 'CSV UTF-8'"),
)


def _where(filename: str) -> str:
    return f"{filename}: " if filename else ""


def _decode(data: bytes, filename: str) -> str:
    where = _where(filename)
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise DirectoryImportError(f"{where}not UTF-8 text ({what})")
    if b"\x00" in data[:4096]:
        raise DirectoryImportError(f"{where}not UTF-8 text (binary data: it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DirectoryImportError(
            f"{where}line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "export or save it again as UTF-8 ('CSV UTF-8' in Excel)"
        ) from exc
    if not text.strip():
        raise DirectoryImportError(f"{where}empty file")
    return text


def _clean(value: str) -> str:
    """One line, like the catalog loader keeps it (load._clean), so a diff shows what
    the loader will see: non-printables become spaces, runs of space collapse."""
    if not value.isprintable():  # the per-character pass only when needed (~10x faster)
        value = "".join(c if c.isprintable() else " " for c in value)
    return " ".join(value.split())


def _primary_smtp(proxies: Iterable[str]) -> str:
    for proxy in proxies:
        entry = proxy.strip()
        if entry.startswith("SMTP:"):  # upper case marks the primary address
            return entry[5:].strip().lower()
    return ""


def _add(
    users: dict[str, dict[str, str]],
    skipped: list[str],
    email: str,
    fields: dict[str, str],
    where: str,
    missing: str,
) -> None:
    if not _EMAIL.fullmatch(email):
        skipped.append(f"{where}: {f'not an email address: {email!r}' if email else missing}")
        return
    if email in users:
        skipped.append(f"{where}: {email} appears again; the later row wins")
    users[email] = {"email": email, **{k: v for k, v in fields.items() if k != "email"}}


# --- detection -----------------------------------------------------------------------


def parse_directory(data: bytes, filename: str = "") -> ImportedUsers:
    """Read any supported export, telling the format from the content (not the name)."""
    text = _decode(data, filename)
    if text.lstrip()[:1] in ("{", "["):
        return _graph(text, filename)
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    if header and header[0] == "email":
        return _catalog(text, filename)
    return _m365(text, filename)


# --- CSV -----------------------------------------------------------------------------


def _csv_rows(
    text: str, filename: str, delimiter: str = ","
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and (first line number, {column: value}) per non-blank row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = next(reader, [])
        end = reader.line_num
        for values in reader:
            start, end = end + 1, reader.line_num  # a quoted newline spans lines
            if not any(v.strip() for v in values):
                continue
            if any(v.strip() for v in values[len(header) :]):
                # An unquoted comma shifts every later value into the wrong column.
                raise DirectoryImportError(
                    f"{_where(filename)}line {start}: {len(values)} values but "
                    f"{len(header)} columns (a value with a comma must be in double quotes)"
                )
            rows.append((start, dict(zip(header, values, strict=False))))
    except csv.Error as exc:
        raise DirectoryImportError(f"{_where(filename)}line {reader.line_num}: {exc}") from exc
    return header, rows


def parse_m365_csv(data: bytes, filename: str = "") -> ImportedUsers:
    """The admin centre's "Export users" CSV (Users > Active users > Export users)."""
    return _m365(_decode(data, filename), filename)


def _address_columns(header: list[str]) -> bool:
    keys = {_header_key(c) for c in header}
    return bool(keys & {_PROXY_COLUMN, _MAIL_COLUMN, _header_key("User principal name")})


def _cell(row: dict[str, str], by_key: dict[str, str], key: str) -> str:
    column = by_key.get(key)
    return row.get(column, "") if column else ""


def _m365(text: str, filename: str) -> ImportedUsers:
    # Excel in many locales saves "CSV" with ';' (or tabs when saving as text).
    headers = {d: next(csv.reader(io.StringIO(text, newline=""), delimiter=d), []) for d in ",;\t"}
    delimiter = next((d for d, h in headers.items() if _address_columns(h)), "")
    if not delimiter:
        first = headers[","][0].strip().lower() if headers[","] else ""
        hint = "; a users.csv needs exactly 'email' as its first column" if first == "email" else ""
        raise DirectoryImportError(
            f"{_where(filename)}not a Microsoft 365 user export "
            f"(no 'User principal name' column){hint}"
        )
    header, rows = _csv_rows(text, filename, delimiter)
    by_key = {_header_key(c): c for c in reversed(header)}  # first of same-named columns
    mapped = [(c, _M365_COLUMNS[_header_key(c)]) for c in header if _header_key(c) in _M365_COLUMNS]
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for line, row in rows:
        fields: dict[str, str] = {}
        for column, field in mapped:  # "Phone number" and "Office phone": first non-empty
            fields[field] = fields.get(field) or _clean(row.get(column, ""))
        proxies = _PROXY_SEPARATOR.split(_cell(row, by_key, _PROXY_COLUMN))
        email = (
            _clean(_cell(row, by_key, _MAIL_COLUMN)).lower()
            or _primary_smtp(proxies)
            or fields.get("upn", "").lower()
        )
        _add(users, skipped, email, fields, f"line {line}", "no email or user principal name")
    return ImportedUsers(users, "m365-csv", tuple(skipped))


def parse_catalog_csv(data: bytes, filename: str = "") -> ImportedUsers:
    """Our own ``users.csv``. Columns outside FIELD_NAMES are kept: templates may use
    them, and dropping them would hide from a diff that an import loses them."""
    return _catalog(_decode(data, filename), filename)


def _catalog(text: str, filename: str) -> ImportedUsers:
    header, rows = _csv_rows(text, filename)
    if "email" not in header:
        raise DirectoryImportError(f"{_where(filename)}not a users.csv (no 'email' column)")
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for line, row in rows:
        fields = {k: _clean(v) for k, v in row.items() if k}
        email = fields.pop("email").lower()
        _add(users, skipped, email, fields, f"line {line}", "no email address")
    return ImportedUsers(users, "catalog-csv", tuple(skipped))


# --- Graph JSON ----------------------------------------------------------------------


def parse_graph_json(data: bytes, filename: str = "") -> ImportedUsers:
    """Microsoft Graph ``GET /users`` output: a page ({"value": [...]}) or a bare array."""
    return _graph(_decode(data, filename), filename)


def _json_kind(value: object) -> str:
    names = {dict: "an object", list: "an array", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


def _json_text(value: object, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a hand-written postalCode: 60601
    raise DirectoryImportError(f"{path}: expected text, got {_json_kind(value)}")


def _json_strings(value: object, path: str) -> list[str]:
    """A list of strings (a lone string counts as a list of one); null is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [_json_text(v, f"{path}[{n}]") for n, v in enumerate(value)]
    raise DirectoryImportError(f"{path}: expected an array of text, got {_json_kind(value)}")


def _graph_groups(user: dict[str, object], path: str) -> str:
    if "groups" in user:  # our extension: a list of group names
        names = _json_strings(user["groups"], f"{path}.groups")
    else:  # $expand=memberOf: directory objects; roles and units are not groups
        members = user.get("memberOf")
        members = members if isinstance(members, list) else []
        names = [
            _json_text(m.get("displayName"), f"{path}.memberOf[{n}].displayName")
            for n, m in enumerate(members)
            if isinstance(m, dict)
            and m.get("@odata.type", "#microsoft.graph.group") == "#microsoft.graph.group"
        ]
    return ";".join(_clean(n) for n in names if _clean(n))


def graph_fields(user: dict[str, object], path: str = "user") -> dict[str, str]:
    """A Graph user object's directory fields (no ``email``, no ``groups``)."""
    fields = {
        field: _json_text(user.get(key), f"{path}.{key}") for key, field in _GRAPH_FIELDS.items()
    }
    phones = _json_strings(user.get("businessPhones"), f"{path}.businessPhones")
    fields["phone"] = next((p for p in map(_clean, phones) if p), "")
    return fields


def graph_mailbox(user: dict[str, object], path: str = "user") -> str:
    """The user's mailbox address as the importer chooses it: ``mail``, else the primary
    (upper-case ``SMTP:``) proxy address; "" when the user has neither."""
    proxies = _json_strings(user.get("proxyAddresses"), f"{path}.proxyAddresses")
    return _json_text(user.get("mail"), f"{path}.mail").lower() or _primary_smtp(proxies)


def _graph_user(user: dict[str, object], path: str) -> tuple[str, dict[str, str]]:
    fields = graph_fields(user, path)
    fields["groups"] = _graph_groups(user, path)
    email = graph_mailbox(user, path) or fields["upn"].lower()
    return email, fields


def _graph(text: str, filename: str) -> ImportedUsers:
    where = _where(filename)
    try:
        doc: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DirectoryImportError(
            f"{where}not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    next_page = ""
    if isinstance(doc, dict):
        if not isinstance(doc.get("value"), list):
            raise DirectoryImportError(
                f"{where}not a Microsoft Graph /users page (no 'value' array)"
            )
        items, base = doc["value"], "value"
        link = doc.get("@odata.nextLink")
        next_page = link if isinstance(link, str) else ""
    elif isinstance(doc, list):
        items, base = doc, ""
    else:
        raise DirectoryImportError(f"{where}not a Microsoft Graph /users page or user array")
    users: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for n, item in enumerate(items):
        path = f"{base}[{n}]"
        if not isinstance(item, dict):
            raise DirectoryImportError(
                f"{where}{path}: expected a user object, got {_json_kind(item)}"
            )
        try:
            email, fields = _graph_user(item, path)
        except DirectoryImportError as exc:
            raise DirectoryImportError(f"{where}{exc}") from None
        _add(users, skipped, email, fields, path, "no email or user principal name")
    return ImportedUsers(users, "graph-json", tuple(skipped), next_page)


# --- diff and write ------------------------------------------------------------------


def diff_users(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> UserDiff:
    """What replacing ``old`` by ``new`` changes; a missing field counts as ""."""
    changes: dict[str, dict[str, tuple[str, str]]] = {}
    for email in sorted(old.keys() & new.keys()):
        before, after = old[email], new[email]
        delta = {
            f: (before.get(f, ""), after.get(f, ""))
            for f in sorted(before.keys() | after.keys())
            if before.get(f, "") != after.get(f, "")
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
    """The tenant's users.csv: ``email``, then every field any user has in FIELD_NAMES
    order (then any other columns, sorted), one row per user sorted by email."""
    present = {k for fields in users.values() for k in fields} - {"email"}
    columns = [f for f in FIELD_NAMES if f in present and f != "email"]
    columns += sorted(present - set(FIELD_NAMES))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", *columns])
    for email in sorted(users):
        writer.writerow([email, *(users[email].get(c, "") for c in columns)])
    return out.getvalue().encode("utf-8")
