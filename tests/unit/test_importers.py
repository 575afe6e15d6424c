"""Importing directory fields: admin centre CSV, Graph /users JSON, our users.csv.

Expected values are written out by hand from the fixtures in tests/data/directory/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sigfilter.catalog.importers import (
    DirectoryImportError,
    ImportedUsers,
    diff_users,
    parse_catalog_csv,
    parse_directory,
    parse_graph_json,
    parse_m365_csv,
    to_catalog_csv,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "directory"

# Every catalog field the admin centre export carries, empty.
M365_EMPTY = {
    "display_name": "",
    "given_name": "",
    "surname": "",
    "job_title": "",
    "department": "",
    "office": "",
    "phone": "",
    "mobile": "",
    "fax": "",
    "street": "",
    "city": "",
    "state": "",
    "postal_code": "",
    "country": "",
    "upn": "",
}
# Every catalog field a Graph user maps to, empty.
GRAPH_EMPTY = {**M365_EMPTY, "company": "", "groups": ""}

M365_USERS = {
    "avery.quill@contoso.com": {
        **M365_EMPTY,
        "email": "avery.quill@contoso.com",  # "SMTP:Avery.Quill@…", lower-cased
        "display_name": "Avery Quill",
        "given_name": "Avery",
        "surname": "Quill",
        "job_title": "Head of Mail Flow",
        "department": "IT",
        "office": "HQ 4th floor",
        "phone": "+1 555 0100",
        "mobile": "+1 555 0199",
        "fax": "+1 555 0101",
        "street": "100 Main St",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "United States",
        "upn": "avery.quill@contoso.com",
    },
    "dana@contoso.com": {
        **M365_EMPTY,
        "email": "dana@contoso.com",  # the primary SMTP address, not the UPN
        "display_name": "Dana Ortiz",
        "given_name": "Dana",
        "surname": "Ortiz",
        "job_title": "Head of Sales, EMEA",
        "department": "Sales",
        "office": "London",
        "mobile": "+44 20 7946 0000",
        "street": "1 Market Street Suite 200",  # quoted newline: one line, as the loader keeps it
        "city": "London",
        "postal_code": "EC1A 1AA",
        "country": "United Kingdom",
        "upn": "dana.ortiz@contoso.com",
    },
    "jose.alvarez@contoso.com": {
        **M365_EMPTY,
        "email": "jose.alvarez@contoso.com",  # after an X500 entry, ';'-separated
        "display_name": "José Álvarez",
        "given_name": "José",
        "surname": "Álvarez",
        "job_title": "Ingeniero de sistemas",
        "department": "I+D",
        "city": "Málaga",
        "country": "España",
        "upn": "jose.alvarez@contoso.com",
    },
    "taro.yamada@contoso.com": {
        **M365_EMPTY,
        "email": "taro.yamada@contoso.com",
        "display_name": "山田 太郎",
        "given_name": "太郎",
        "surname": "山田",
        "job_title": "営業部長",
        "office": "東京",
        "upn": "taro.yamada@contoso.com",
    },
    "mohammed@contoso.com": {
        **M365_EMPTY,
        "email": "mohammed@contoso.com",
        "display_name": "محمد",
        "given_name": "محمد",
        "job_title": "مدير",
        "city": "دبي",
        "upn": "m.alahmad@contoso.com",
    },
    "zoe.jager@contoso.com": {
        **M365_EMPTY,
        "email": "zoe.jager@contoso.com",  # no proxy addresses: the UPN, lower-cased
        "display_name": "Zoe\u0308 Ja\u0308ger",  # combining marks kept as they are
        "given_name": "Zoe\u0308",
        "surname": "Ja\u0308ger",
        "job_title": "Designer",  # "  Designer  " stripped
        "upn": "Zoe.Jager@contoso.com",
    },
}

GRAPH_USERS = {
    "avery.quill@contoso.com": {
        **GRAPH_EMPTY,
        "email": "avery.quill@contoso.com",
        "display_name": "Avery Quill",
        "given_name": "Avery",
        "surname": "Quill",
        "job_title": "Head of Mail Flow",
        "department": "IT",
        "company": "Contoso Ltd",
        "office": "HQ 4th floor",
        "phone": "+1 555 0100",  # the first of businessPhones
        "street": "100 Main St",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "United States",
        "upn": "avery.quill@contoso.com",
    },
    "blake@contoso.com": {  # mail null: the SMTP: proxy address
        **GRAPH_EMPTY,
        "email": "blake@contoso.com",
        "display_name": "Blake Stone",
        "given_name": "Blake",
        "surname": "Stone",
        "mobile": "+1 555 0142",
        "upn": "blake.stone@contoso.com",
    },
    "taro.yamada@contoso.com": {
        **GRAPH_EMPTY,
        "email": "taro.yamada@contoso.com",
        "display_name": "山田 太郎",
        "given_name": "太郎",
        "surname": "山田",
        "job_title": "営業部長",
        "department": "営業",
        "company": "Contoso KK",
        "office": "東京",
        "phone": "+81 3-1234-5678",
        "street": "千代田区丸の内1-1",
        "city": "東京都",
        "postal_code": "100-0005",
        "country": "Japan",
        "upn": "taro.yamada@contoso.com",
        "groups": "Sales;Japan",
    },
    "chris.park@contoso.com": {  # neither mail nor proxy addresses: the UPN
        **GRAPH_EMPTY,
        "email": "chris.park@contoso.com",
        "display_name": "Chris Park",
        "given_name": "Chris",
        "surname": "Park",
        "job_title": "Intern",
        "upn": "chris.park@contoso.com",
    },
}

CATALOG_USERS = {
    "avery.quill@contoso.com": {
        "email": "avery.quill@contoso.com",
        "display_name": "Avery Quill",
        "job_title": "Head of Mail Flow",
        "phone": "+1 555 0100",
        "groups": "IT;Managers",
        "pronouns": "they/them",  # a column of the tenant's own
    },
    "dana@contoso.com": {
        "email": "dana@contoso.com",
        "display_name": "Dana Ortiz",
        "job_title": "Head of Sales, EMEA",
        "phone": "",
        "groups": "Sales",
        "pronouns": "",
    },
    "taro.yamada@contoso.com": {
        "email": "taro.yamada@contoso.com",
        "display_name": "山田 太郎",
        "job_title": "営業部長",
        "phone": "+81 3-1234-5678",
        "groups": "Sales;Japan",
        "pronouns": "",
    },
}


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- the three formats -----------------------------------------------------------------


def test_fixture_is_shaped_like_a_real_export() -> None:
    data = read("m365-export.csv")
    assert data.startswith(b'\xef\xbb\xbf"Block credential","City","Country/Region"')
    assert data.count(b"\r\n") == 8  # header + 7 rows; Dana's street has a bare "\n"


def test_m365_export() -> None:
    got = parse_m365_csv(read("m365-export.csv"))
    assert got.source == "m365-csv"
    assert got.users == M365_USERS
    assert got.skipped == ("line 9: no email or user principal name",)  # the room
    assert got.next_page == ""


def test_graph_users_page() -> None:
    got = parse_graph_json(read("graph-users.json"))
    assert got.source == "graph-json"
    assert got.users == GRAPH_USERS
    assert got.skipped == ("value[4]: no email or user principal name",)  # the printer
    assert got.next_page.startswith("https://graph.microsoft.com/v1.0/users?")


def test_catalog_csv() -> None:
    got = parse_catalog_csv(read("catalog-users.csv"))
    assert got.source == "catalog-csv"
    assert got.users == CATALOG_USERS
    assert got.skipped == ("line 5: no email address",)  # line 4 is blank


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("m365-export.csv", "m365-csv", M365_USERS),
        ("graph-users.json", "graph-json", GRAPH_USERS),
        ("catalog-users.csv", "catalog-csv", CATALOG_USERS),
    ],
)
def test_format_is_detected_from_content(
    name: str, source: str, expected: dict[str, dict[str, str]]
) -> None:
    got = parse_directory(read(name), "upload.txt")  # the name says nothing
    assert (got.source, got.users) == (source, expected)


@pytest.mark.parametrize(
    ("data", "source"),
    [
        (b"  \n\t[]", "graph-json"),
        (b'\xef\xbb\xbf {"value": []}', "graph-json"),
        (b"email\n", "catalog-csv"),
        (b"\xef\xbb\xbfemail,display_name\r\n", "catalog-csv"),
        (b'"User principal name"\r\n', "m365-csv"),
        (b'"Proxy addresses"\r\n', "m365-csv"),
    ],
)
def test_detection_edges(data: bytes, source: str) -> None:
    got = parse_directory(data)
    assert (got.source, got.users) == (source, {})


# --- admin centre CSV details ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (  # older exports: "Office phone", "State or province", "ZIP or postal code", …
            "Office phone,State or province,ZIP or postal code,Country or region,"
            "User principal name",
            "+1 555 0100,Ontario,K1A 0B1,Canada,kim@contoso.com",
            {"phone": "+1 555 0100", "state": "Ontario", "postal_code": "K1A 0B1"}
            | {"country": "Canada", "upn": "kim@contoso.com"},
        ),
        (  # case and spacing do not matter; unknown columns are ignored
            " DISPLAY  NAME ,user principal name,Favourite colour,mobile phone",
            "Kim Lee,kim@contoso.com,blue,+1 555 0142",
            {"display_name": "Kim Lee", "upn": "kim@contoso.com", "mobile": "+1 555 0142"},
        ),
        (  # PowerShell's property names
            "UserPrincipalName,DisplayName,FirstName,LastName,PhoneNumber,StreetAddress",
            "kim@contoso.com,Kim Lee,Kim,Lee,+1 555 0100,1 Elm St",
            {"upn": "kim@contoso.com", "display_name": "Kim Lee", "given_name": "Kim"}
            | {"surname": "Lee", "phone": "+1 555 0100", "street": "1 Elm St"},
        ),
        (  # two columns for one field: the first non-empty value
            "User principal name,Phone number,Office phone",
            "kim@contoso.com,,+1 555 0100",
            {"upn": "kim@contoso.com", "phone": "+1 555 0100"},
        ),
        (  # values are stripped; an empty quoted value is ""
            'User principal name,Title,City\n"  KIM@Contoso.com ","  Lead  ",""',
            None,
            {"upn": "KIM@Contoso.com", "job_title": "Lead", "city": ""},
        ),
    ],
)
def test_m365_header_variants(header: str, row: str | None, expected: dict[str, str]) -> None:
    data = header + ("\n" + row if row is not None else "") + "\n"
    got = parse_m365_csv(data.encode())
    assert got.users == {"kim@contoso.com": {"email": "kim@contoso.com", **expected}}


@pytest.mark.parametrize(
    ("proxies", "email"),
    [
        ("SMTP:kim@contoso.com+smtp:k@contoso.onmicrosoft.com", "kim@contoso.com"),
        ("smtp:k@contoso.onmicrosoft.com+SMTP:kim@contoso.com", "kim@contoso.com"),
        ("smtp:k@contoso.onmicrosoft.com;SMTP:kim@contoso.com", "kim@contoso.com"),
        ("smtp:k@x.example; SMTP:Kim@Contoso.com ; sip:kim@contoso.com", "kim@contoso.com"),
        ("SMTP:kim+sig@contoso.com+smtp:k@x.example", "kim+sig@contoso.com"),  # '+' in address
        ("smtp:kim+old@x.example+SMTP:kim@contoso.com", "kim@contoso.com"),
        (
            "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=x"
            "+SMTP:kim@contoso.com",
            "kim@contoso.com",
        ),
        ("EUM:1234;phone-context=contoso.com+SMTP:kim@contoso.com", "kim@contoso.com"),
        ("smtp:k@contoso.onmicrosoft.com", "upn@contoso.com"),  # no primary: the UPN
        ("", "upn@contoso.com"),
    ],
)
def test_primary_smtp_from_proxy_addresses(proxies: str, email: str) -> None:
    data = f'"User principal name","Proxy addresses"\r\n"upn@contoso.com","{proxies}"\r\n'
    assert list(parse_m365_csv(data.encode()).users) == [email]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_m365_csv_saved_by_excel_with_another_delimiter(delimiter: str) -> None:
    data = delimiter.join(['"Display name"', '"User principal name"', '"Title"']) + "\r\n"
    data += delimiter.join(['"Kim Lee"', '"kim@contoso.com"', '"Head of Sales, EMEA"']) + "\r\n"
    got = parse_directory(data.encode("utf-8-sig"))
    assert got.users == {
        "kim@contoso.com": {
            "email": "kim@contoso.com",
            "display_name": "Kim Lee",
            "upn": "kim@contoso.com",
            "job_title": "Head of Sales, EMEA",
        }
    }


@pytest.mark.parametrize(
    ("parse", "data", "note"),
    [
        (
            parse_m365_csv,
            b"User principal name,Title\nkim@contoso.com,Dev\nKIM@contoso.com,Lead\n",
            "line 3: kim@contoso.com appears again; the later row wins",
        ),
        (
            parse_catalog_csv,
            b"email,job_title\nkim@contoso.com,Dev\nKim@Contoso.com,Lead\n",
            "line 3: kim@contoso.com appears again; the later row wins",
        ),
        (
            parse_graph_json,
            b'[{"mail": "kim@contoso.com", "jobTitle": "Dev"},'
            b' {"mail": "KIM@contoso.com", "jobTitle": "Lead"}]',
            "[1]: kim@contoso.com appears again; the later row wins",
        ),
    ],
)
def test_duplicate_addresses_last_wins(parse, data: bytes, note: str) -> None:  # type: ignore[no-untyped-def]
    got: ImportedUsers = parse(data)
    assert list(got.users) == ["kim@contoso.com"]
    assert got.users["kim@contoso.com"]["job_title"] == "Lead"
    assert got.skipped == (note,)


def test_rows_without_an_address_are_noted_by_first_line() -> None:
    data = (
        b'"Display name","User principal name","Street address"\r\n'
        b'"Room","","1 Elm St\r\nFloor 2"\r\n'  # lines 2-3
        b'"Kiosk","kiosk","x"\r\n'  # line 4: not an address
    )
    got = parse_m365_csv(data)
    assert got.users == {}
    assert got.skipped == (
        "line 2: no email or user principal name",
        "line 4: not an email address: 'kiosk'",
    )


# --- Graph details ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (  # all null
            {"mail": "kim@contoso.com", "displayName": None, "businessPhones": None},
            {},
        ),
        (  # the first non-empty business phone; numbers as text
            {"mail": "kim@contoso.com", "businessPhones": ["", "+1 555 0100"], "postalCode": 60601},
            {"phone": "+1 555 0100", "postal_code": "60601"},
        ),
        (  # our "groups" extension
            {"mail": "kim@contoso.com", "groups": ["Sales", " EMEA ", ""]},
            {"groups": "Sales;EMEA"},
        ),
        (  # $expand=memberOf: groups by display name, directory roles left out
            {
                "mail": "kim@contoso.com",
                "memberOf": [
                    {"@odata.type": "#microsoft.graph.group", "displayName": "Sales"},
                    {"@odata.type": "#microsoft.graph.directoryRole", "displayName": "Admin"},
                    {"@odata.type": "#microsoft.graph.group", "displayName": "All staff"},
                ],
            },
            {"groups": "Sales;All staff"},
        ),
        (  # mail wins over the proxy addresses and is lower-cased and stripped
            {"mail": " Kim@Contoso.COM ", "proxyAddresses": ["SMTP:other@contoso.com"]},
            {},
        ),
    ],
)
def test_graph_user_fields(user: dict[str, object], expected: dict[str, str]) -> None:
    got = parse_graph_json(json.dumps({"value": [user]}).encode())
    assert got.users == {"kim@contoso.com": {**GRAPH_EMPTY, "email": "kim@contoso.com", **expected}}
    assert got.next_page == ""


# --- diff and write --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "added", "changed", "removed", "changes"),
    [
        ({}, {}, (), (), (), {}),
        (
            {},
            {"b@x.example": {"email": "b@x.example"}, "a@x.example": {"email": "a@x.example"}},
            ("a@x.example", "b@x.example"),
            (),
            (),
            {},
        ),
        (
            {"a@x.example": {"email": "a@x.example", "job_title": "Dev"}},
            {},
            (),
            (),
            ("a@x.example",),
            {},
        ),
        (
            {
                "a@x.example": {"email": "a@x.example", "job_title": "Dev", "fax": "1"},
                "b@x.example": {"email": "b@x.example", "job_title": "Ops"},
                "c@x.example": {"email": "c@x.example", "city": ""},
                "z@x.example": {"email": "z@x.example", "phone": "2"},
            },
            {
                "z@x.example": {"email": "z@x.example", "phone": "3"},
                "a@x.example": {"email": "a@x.example", "job_title": "Lead Dev", "mobile": "+1"},
                "c@x.example": {"email": "c@x.example"},  # missing == "": unchanged
                "d@x.example": {"email": "d@x.example"},
            },
            ("d@x.example",),
            ("a@x.example", "z@x.example"),
            ("b@x.example",),
            {
                "a@x.example": {
                    "fax": ("1", ""),
                    "job_title": ("Dev", "Lead Dev"),
                    "mobile": ("", "+1"),
                },
                "z@x.example": {"phone": ("2", "3")},
            },
        ),
    ],
)
def test_diff_users(old, new, added, changed, removed, changes) -> None:  # type: ignore[no-untyped-def]
    diff = diff_users(old, new)
    assert (diff.added, diff.changed, diff.removed) == (added, changed, removed)
    assert diff.changes == changes


def test_diff_of_an_import_against_the_catalog() -> None:
    old = parse_catalog_csv(read("catalog-users.csv")).users
    diff = diff_users(old, parse_m365_csv(read("m365-export.csv")).users)
    assert diff.added == (
        "jose.alvarez@contoso.com",
        "mohammed@contoso.com",
        "zoe.jager@contoso.com",
    )
    assert diff.removed == ()
    assert diff.changed == (
        "avery.quill@contoso.com",
        "dana@contoso.com",
        "taro.yamada@contoso.com",
    )
    assert diff.changes["dana@contoso.com"]["groups"] == ("Sales", "")  # the export has none
    assert diff.changes["avery.quill@contoso.com"]["pronouns"] == ("they/them", "")
    assert "job_title" not in diff.changes["dana@contoso.com"]


def test_to_catalog_csv_layout() -> None:
    users = {
        "b@x.example": {"email": "b@x.example", "upn": "B@x.example", "job_title": 'Say "hi"'},
        "a@x.example": {
            "email": "a@x.example",
            "display_name": "Ana",
            "job_title": "Head of Sales, EMEA",
            "pronouns": "she/her",
            "street": "1 Elm St\nFloor 2",
        },
    }
    assert to_catalog_csv(users) == (
        b"email,display_name,job_title,street,upn,pronouns\n"
        b'a@x.example,Ana,"Head of Sales, EMEA","1 Elm St\nFloor 2",,she/her\n'
        b'b@x.example,,"Say ""hi""",,B@x.example,\n'
    )
    assert to_catalog_csv({}) == b"email\n"


def test_to_catalog_csv_of_the_m365_export() -> None:
    text = to_catalog_csv(parse_m365_csv(read("m365-export.csv")).users).decode()
    assert text.splitlines()[0] == (
        "email,display_name,given_name,surname,job_title,department,office,phone,mobile,fax,"
        "street,city,state,postal_code,country,upn"
    )
    assert text.splitlines()[2] == (
        'dana@contoso.com,Dana Ortiz,Dana,Ortiz,"Head of Sales, EMEA",Sales,London,,'
        "+44 20 7946 0000,,1 Market Street Suite 200,London,,EC1A 1AA,United Kingdom,"
        "dana.ortiz@contoso.com"
    )
    assert "\r" not in text


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("m365-export.csv", parse_m365_csv),
        ("graph-users.json", parse_graph_json),
        ("catalog-users.csv", parse_catalog_csv),
    ],
)
def test_to_catalog_csv_round_trips(name: str, parse) -> None:  # type: ignore[no-untyped-def]
    users = parse(read(name)).users
    again = parse_catalog_csv(to_catalog_csv(users))
    assert again.users == users
    assert again.skipped == ()
    assert to_catalog_csv(again.users) == to_catalog_csv(users)


# --- refusals --------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (PNG, ["not UTF-8", "PNG image"]),
        (b"PK\x03\x04\x14\x00\x06\x00", ["ZIP archive", "Excel", "CSV UTF-8"]),
        ('"User principal name"\r\n'.encode("utf-16"), ["UTF-16", "CSV UTF-8"]),
        (b"", ["empty file"]),
        (b"\xef\xbb\xbf \r\n\r\n", ["empty file"]),
        (b"name,colour\nx,blue\n", ["not a Microsoft 365 user export", "User principal name"]),
        (b"Email,Name\nkim@contoso.com,Kim\n", ["User principal name", "exactly 'email'"]),
        (b"x" * 10 + b"\x00" + b"y" * 10, ["not UTF-8", "binary"]),
        (b'{"value": [1, 2', ["not valid JSON", "line 1, column 16"]),
        (b'{"users": []}', ["not a Microsoft Graph /users page", "no 'value' array"]),
        (b"display_name,email\n", ["not a Microsoft 365 user export"]),  # 'email' not first
        (b"[1]", ["[0]", "expected a user object", "int"]),
        (b'{"value": [{}, {"mail": {"x": 1}}]}', ["value[1].mail", "expected text", "object"]),
        (b'{"value": [{"businessPhones": 5}]}', ["value[0].businessPhones", "array of text"]),
        (
            "Display name,User principal name\nKim,kim@contoso.com\nJos\u00e9,j@x.example\n".encode(
                "latin-1"
            ),
            ["not UTF-8", "line 3", "0xe9", "CSV UTF-8"],
        ),
        (
            b"User principal name,Title\nkim@contoso.com,Head of Sales, EMEA\n",
            ["line 2", "3 values but 2 columns", "double quotes"],
        ),
    ],
)
def test_unreadable_files_are_refused(data: bytes, words: list[str]) -> None:
    with pytest.raises(DirectoryImportError) as info:
        parse_directory(data, "upload.bin")
    message = str(info.value)
    assert message.startswith("upload.bin: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("parse", "data", "words"),
    [
        (parse_catalog_csv, b"name,email2\nx,y\n", ["not a users.csv", "no 'email' column"]),
        (parse_catalog_csv, b"", ["empty file"]),
        (parse_m365_csv, b'{"value": []}', ["not a Microsoft 365 user export"]),
        (parse_graph_json, b"email\nkim@contoso.com\n", ["not valid JSON"]),
        (parse_graph_json, b'"just a string"', ["not a Microsoft Graph /users page"]),
    ],
)
def test_each_parser_refuses_other_formats(parse, data: bytes, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DirectoryImportError) as info:
        parse(data)
    for word in words:
        assert word in str(info.value)


def test_trailing_empty_values_are_not_extra_columns() -> None:
    got = parse_catalog_csv(b"email,job_title\nkim@contoso.com,Dev,,\n")
    assert got.users == {"kim@contoso.com": {"email": "kim@contoso.com", "job_title": "Dev"}}
