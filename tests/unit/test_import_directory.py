"""Importing users from Microsoft 365 exports (admin centre CSV, Graph JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigfilter.catalog.importers import (
    DirectoryImportError,
    diff_users,
    parse_catalog_csv,
    parse_directory,
    to_catalog_csv,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "m365"


def test_admin_center_export() -> None:
    got = parse_directory((DATA / "admin-center-export.csv").read_bytes(), "users.csv")
    assert got.source == "m365-csv"
    assert set(got.users) == {
        "avery.quill@example.com",
        "dana@example.com",  # the primary SMTP address, not the UPN
        "jose.alvarez@example.com",
        "taro.yamada@example.com",
        "m.alahmad@example.com",
        "zoe.jager@example.com",
    }
    avery = got.users["avery.quill@example.com"]
    assert avery["display_name"] == "Avery Quill"
    assert avery["job_title"] == "Head of Mail Flow"
    assert avery["phone"] == "+1 555 0100"
    assert avery["office"] == "HQ 4th floor"
    assert avery["country"] == "United States"
    assert avery["upn"] == "avery.quill@example.com"
    dana = got.users["dana@example.com"]
    assert dana["job_title"] == "Head of Sales, EMEA"  # a quoted comma
    assert dana["street"] == "1 Market Street Suite 200"  # a quoted newline, one line now
    assert dana["postal_code"] == "EC1A 1AA" and dana["mobile"] == "+44 20 7946 0000"
    assert got.users["taro.yamada@example.com"]["display_name"] == "山田 太郎"
    assert got.users["m.alahmad@example.com"]["job_title"] == "مدير"
    assert got.users["zoe.jager@example.com"]["display_name"] == "Zoe\u0308 Ja\u0308ger"
    assert got.skipped == ("line 9: no email or user principal name",)


def test_graph_users_page() -> None:
    got = parse_directory((DATA / "graph-users-page.json").read_bytes(), "users.json")
    assert got.source == "graph-json"
    assert set(got.users) == {"avery.quill@example.com", "blake@example.com"}
    avery = got.users["avery.quill@example.com"]
    assert (avery["phone"], avery["company"], avery["state"]) == (
        "+1 555 0100",
        "Example Corp",
        "IL",
    )
    assert avery["mobile"] == ""  # null
    blake = got.users["blake@example.com"]  # no mail: the primary SMTP proxy address
    assert (blake["display_name"], blake["mobile"], blake["job_title"]) == (
        "Blake Stone",
        "+1 555 0142",
        "",
    )
    assert got.skipped == ("value[2]: no email or user principal name",)


def test_catalog_csv_round_trip() -> None:
    users = parse_directory((DATA / "admin-center-export.csv").read_bytes()).users
    data = to_catalog_csv(users)
    assert data.startswith(
        b"email,display_name,given_name,surname,job_title,department,office,phone,mobile"
    )
    again = parse_directory(data)
    assert again.source == "catalog-csv"

    def filled(u: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {e: {k: v for k, v in f.items() if v} for e, f in u.items()}

    assert filled(again.users) == filled(users)  # columns nobody fills are not written


def test_diff_users() -> None:
    old = {
        "a@x.example": {"email": "a@x.example", "job_title": "Dev"},
        "b@x.example": {"email": "b@x.example", "job_title": "Ops"},
        "c@x.example": {"email": "c@x.example"},
    }
    new = {
        "a@x.example": {"email": "a@x.example", "job_title": "Lead Dev", "mobile": "+1"},
        "c@x.example": {"email": "c@x.example"},
        "d@x.example": {"email": "d@x.example"},
    }
    diff = diff_users(old, new)
    assert diff.added == ("d@x.example",)
    assert diff.removed == ("b@x.example",)
    assert diff.changed == ("a@x.example",)
    assert diff.changes["a@x.example"] == {"job_title": ("Dev", "Lead Dev"), "mobile": ("", "+1")}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), ["not UTF-8"]),
        (b"", ["empty"]),
        (b"name,colour\nx,blue\n", ["not a Microsoft 365 user export", "User principal name"]),
        (b'{"value": [1, 2', ["not valid JSON"]),
        (b'{"users": []}', ["no 'value' array"]),
        (
            "Display name,User principal name\nJos\u00e9,j@x.example\n".encode("latin-1"),
            ["not UTF-8"],
        ),
    ],
)
def test_unreadable_files_are_refused(data: bytes, words: list[str]) -> None:
    with pytest.raises(DirectoryImportError) as info:
        parse_directory(data, "upload.bin")
    for word in words:
        assert word in str(info.value)
    assert "upload.bin" in str(info.value)


def test_duplicate_rows_are_noted() -> None:
    got = parse_catalog_csv(b"email,display_name\na@x.example,First\nA@x.example,Second\n")
    assert got.users["a@x.example"]["display_name"] == "Second"
    assert got.skipped == ("line 3: a@x.example appears again; the later row wins",)
