"""The catalog: loading, rules, rendering (sandbox, escaping, empty lines), checks."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from sigfilter.catalog import (
    CatalogError,
    Renderer,
    RenderError,
    compile_catalog,
    load_catalog,
    resolve,
)
from sigfilter.catalog.check import check_catalog
from sigfilter.catalog.compiled import TenantRecord, UserRecord
from sigfilter.catalog.render import drop_empty_lines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"


@pytest.fixture
def cat_dir(tmp_path: Path) -> Path:
    """A writable copy of the example catalog."""
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    return target


def tenant_dir(root: Path) -> Path:
    return root / "tenants" / "example.com"


def write_users(root: Path, rows: str) -> None:
    (tenant_dir(root) / "users.csv").write_text(rows, encoding="utf-8")


def records(root: Path) -> tuple[TenantRecord, dict[str, UserRecord]]:
    recs = compile_catalog(load_catalog(root))
    tenant = TenantRecord.from_json(recs["tenant:example.com"])
    users = {k[5:]: UserRecord.from_json(v) for k, v in recs.items() if k.startswith("user:")}
    return tenant, users


def test_example_catalog_is_valid() -> None:
    cat = load_catalog(EXAMPLE)
    problems, summary = check_catalog(cat)
    assert problems == []
    assert "1 tenants, 2 users" in summary
    avery = cat.tenants["example.com"].users["avery.quill@example.com"]
    assert (avery["display_name"], avery["job_title"], avery["phone"]) == (
        "Avery Quill",
        "Head of Mail Flow",
        "+1 555 0100",
    )


def test_empty_field_lines_disappear(cat_dir: Path) -> None:
    tenant, users = records(cat_dir)
    entry = users["avery.quill@example.com"].entries[-1]  # the default rule
    assert "M " not in entry.text.splitlines()  # Avery has no mobile: the line is gone
    assert "<td>M " not in entry.html
    assert "<td>T +1 555 0100</td>" in entry.html
    assert entry.text.splitlines() == [
        "-- ",
        "Avery Quill",
        "Head of Mail Flow",
        "IT",
        "Example Corp | T +1 555 0100",
    ]


def test_lines_without_fields_stay() -> None:
    src = "A {{ phone }}\nstatic line\nB {{ mobile }} {{ phone }}\n{% if x %}keep{% endif %}\n"
    out = drop_empty_lines(src, {"phone", "mobile"})
    assert out.splitlines()[1] == "{% endif %}static line"  # closes line 1 on line 2
    assert "{% if phone %}A {{ phone }}" in out
    assert "{% if mobile or phone %}B" in out
    assert out.count("\n") == src.count("\n")  # the wrapper adds no template lines


@pytest.mark.parametrize(
    "name",
    [
        "<img src=x onerror=alert(1)>",
        '"><script>alert(1)</script>',
        "Avery</td></tr><tr><td><a href='javascript:alert(1)'>x</a>",
    ],
)
def test_fields_cannot_inject_markup(cat_dir: Path, name: str) -> None:
    write_users(
        cat_dir,
        f'email,display_name,job_title\navery.quill@example.com,"{name.replace(chr(34), chr(34) * 2)}",x\n',
    )
    _, users = records(cat_dir)
    html = users["avery.quill@example.com"].entries[-1].html
    assert "<script" not in html and "<img src=x" not in html and "<a href" not in html
    assert "&lt;" in html


def test_fields_cannot_add_text_lines(cat_dir: Path) -> None:
    write_users(
        cat_dir,
        'email,display_name,job_title\navery.quill@example.com,"Avery\nInjected line\r\nMore",CEO\x07\n',
    )
    _, users = records(cat_dir)
    text = users["avery.quill@example.com"].entries[-1].text
    assert "Avery Injected line More" in text
    assert "\x07" not in text


@pytest.mark.parametrize(
    "name",
    ["山田 太郎", "محمد الأحمد", "Zoe\u0308 Ja\u0308ger", "שלום עליכם"],
)
def test_unicode_names_survive(cat_dir: Path, name: str) -> None:
    write_users(cat_dir, f"email,display_name\navery.quill@example.com,{name}\n")
    _, users = records(cat_dir)
    entry = users["avery.quill@example.com"].entries[-1]
    assert name in entry.html
    assert name in entry.text.splitlines()


def test_render_error_names_template_and_line(cat_dir: Path) -> None:
    path = tenant_dir(cat_dir) / "templates" / "default" / "default.txt"
    path.write_text("-- \n{{ display_name }}\n{{ display_name | nosuchfilter }}\n")
    with pytest.raises(CatalogError) as info:  # syntax problems are found by check
        problems, _ = check_catalog(load_catalog(cat_dir))
        raise CatalogError(problems)
    assert f"{path}:3:" in str(info.value)
    assert "nosuchfilter" in str(info.value)


def test_runtime_error_names_template_and_line(cat_dir: Path) -> None:
    path = tenant_dir(cat_dir) / "templates" / "default" / "default.html"
    path.write_text("<p>{{ display_name }}</p>\n<p>{{ image('missing.png') }}</p>\n")
    tenant = load_catalog(cat_dir).tenants["example.com"]
    with pytest.raises(RenderError, match=rf"{path}:2: no image 'missing.png'"):
        Renderer(tenant).render_set("default", tenant.users["avery.quill@example.com"])


@pytest.mark.parametrize(
    "expr",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ display_name.__class__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_escapes_refused_by_check(cat_dir: Path, expr: str) -> None:
    path = tenant_dir(cat_dir) / "templates" / "default" / "default.html"
    path.write_text("<p>{{ display_name }}</p>\n" + expr + "\n")
    problems, _ = check_catalog(load_catalog(cat_dir))
    assert any(p.startswith(f"{path}:2:") for p in problems), problems


def test_sandbox_blocks_escape_at_render_too(cat_dir: Path) -> None:
    path = tenant_dir(cat_dir) / "templates" / "default" / "default.html"
    path.write_text("{{ display_name.__class__.__mro__ }}\n")
    tenant = load_catalog(cat_dir).tenants["example.com"]
    with pytest.raises(RenderError, match=f"{path}:1:"):
        Renderer(tenant).render_set("default", tenant.users["avery.quill@example.com"])


def test_unknown_field_reported(cat_dir: Path) -> None:
    path = tenant_dir(cat_dir) / "templates" / "default" / "reply.txt"
    path.write_text("-- \n{{ display_name }}\n{{ jobtitle }}\n")
    problems, _ = check_catalog(load_catalog(cat_dir))
    assert f"{path}:3: unknown field 'jobtitle'" in problems


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("tenant.toml", 'mode = "loud"\n', "mode must be one of"),
        ("tenant.toml", "domains = [\n", "tenant.toml"),
        ("tenant.toml", 'colour = "blue"\n', "unknown setting 'colour'"),
        ("users.csv", "name,phone\nx,1\n", "'email'"),
        ("users.csv", "email\nnot-an-address\n", "users.csv:2: not an email address"),
        ("rules.toml", '[[rule]]\nrecipients = "everyone"\n', "every rule needs a name"),
        (
            "rules.toml",
            '[[rule]]\nname = "x"\nrecipients = "everyone"\n',
            "rules.toml:1: recipients must be one of",
        ),
        (
            "rules.toml",
            '[[rule]]\nname = "x"\nbanner_start = "soon"\n',
            "banner_start must be a date",
        ),
    ],
)
def test_load_problems_are_reported(cat_dir: Path, file: str, content: str, message: str) -> None:
    (tenant_dir(cat_dir) / file).write_text(content)
    with pytest.raises(CatalogError) as info:
        load_catalog(cat_dir)
    assert message in str(info.value)


def test_rule_references_checked(cat_dir: Path) -> None:
    (tenant_dir(cat_dir) / "rules.toml").write_text(
        '[[rule]]\nname = "a"\ntemplate = "nope"\n\n[[rule]]\nname = "a"\nbanner = "gone"\n'
    )
    problems, _ = check_catalog(load_catalog(cat_dir))
    path = tenant_dir(cat_dir) / "rules.toml"
    assert f"{path}:1: no template set 'nope'" in problems
    assert f"{path}:5: a second rule named 'a'" in problems
    assert f"{path}:5: no banner 'gone'" in problems


def test_embedded_image_over_limit_refused(cat_dir: Path) -> None:
    conf = tenant_dir(cat_dir) / "tenant.toml"
    conf.write_text(
        conf.read_text().replace('images = "link"', 'images = "embed"\nmax_image_bytes = 50')
    )
    problems, _ = check_catalog(load_catalog(cat_dir))
    assert any("logo.png" in p and "over the limit" in p for p in problems)


def test_missing_default_template_set(cat_dir: Path) -> None:
    shutil.rmtree(tenant_dir(cat_dir) / "templates" / "default")
    (tenant_dir(cat_dir) / "templates" / "other").mkdir()
    with pytest.raises(CatalogError, match="missing the 'default' template set"):
        load_catalog(cat_dir)


def test_duplicate_domain_across_tenants(cat_dir: Path) -> None:
    other = cat_dir / "tenants" / "other"
    shutil.copytree(tenant_dir(cat_dir), other)
    with pytest.raises(CatalogError, match=r"domain example\.com also belongs to"):
        load_catalog(cat_dir)


# -- rules, first match wins --------------------------------------------------------------

RULES = """
[[rule]]
name = "exception"
users = ["ceo@example.com"]
action = "skip"

[[rule]]
name = "sales external"
departments = ["Sales"]
recipients = "external"
template = "sales"
banner = "promo"
banner_start = 2026-12-01
banner_end = 2026-12-31

[[rule]]
name = "support group"
groups = ["Support Team"]
template = "sales"

[[rule]]
name = "internal plain"
recipients = "internal"
template = "plain"
"""


@pytest.fixture
def ruled(cat_dir: Path) -> tuple[TenantRecord, dict[str, UserRecord]]:
    t = tenant_dir(cat_dir)
    (t / "rules.toml").write_text(RULES)
    for name, marker in (("sales", "SALES"), ("plain", "PLAIN")):
        (t / "templates" / name).mkdir()
        (t / "templates" / name / "default.html").write_text(
            f"<p>{marker} {{{{ display_name }}}}</p>\n"
        )
        (t / "templates" / name / "default.txt").write_text(f"{marker} {{{{ display_name }}}}\n")
    (t / "banners" / "promo.html").write_text("<p>PROMO</p>\n")
    (t / "banners" / "promo.txt").write_text("PROMO\n")
    write_users(
        cat_dir,
        "email,display_name,department,groups\n"
        "ceo@example.com,Chief,Board,\n"
        "sam@example.com,Sam,Sales,\n"
        "sue@example.com,Sue,Support,Support Team;Staff\n"
        "ivy@example.com,Ivy,IT,\n",
    )
    return records(cat_dir)


DEC = dt.date(2026, 12, 15)
NOV = dt.date(2026, 11, 15)
EXT = ["client@customer.example"]
INT = ["colleague@example.com"]


@pytest.mark.parametrize(
    ("sender", "recipients", "today", "rule", "contains", "absent"),
    [
        ("ceo@example.com", EXT, DEC, "exception", None, None),
        ("sam@example.com", EXT, DEC, "sales external", "SALES Sam", None),
        ("sam@example.com", EXT, DEC, "sales external", "PROMO", None),
        ("sam@example.com", EXT, NOV, "sales external", "SALES Sam", "PROMO"),
        ("sam@example.com", INT, DEC, "internal plain", "PLAIN Sam", "SALES"),
        ("sam@example.com", INT + EXT, DEC, "sales external", "SALES", None),
        ("sam@example.com", None, DEC, "sales external", "SALES", None),
        ("sue@example.com", INT, DEC, "support group", "SALES Sue", None),
        ("ivy@example.com", EXT, DEC, "(default)", "Ivy", "SALES"),
        ("ivy@example.com", INT, DEC, "internal plain", "PLAIN Ivy", None),
    ],
)
def test_rules_first_match_wins(
    ruled: tuple[TenantRecord, dict[str, UserRecord]],
    sender: str,
    recipients: list[str] | None,
    today: dt.date,
    rule: str,
    contains: str | None,
    absent: str | None,
) -> None:
    tenant, users = ruled
    found = resolve(users[sender], tenant, recipients, today)
    assert found.rule == rule
    if contains is None:
        assert found.signature is None and found.reason == "rule-skip"
        return
    assert found.signature is not None
    assert contains in found.signature.html and contains in found.signature.text
    if absent:
        assert absent not in found.signature.html + found.signature.text


def test_records_round_trip(ruled: tuple[TenantRecord, dict[str, UserRecord]]) -> None:
    tenant, users = ruled
    for user in users.values():
        assert UserRecord.from_json(user.to_json()) == user
    assert TenantRecord.from_json(tenant.to_json()) == tenant


def test_embedded_images_in_records(cat_dir: Path) -> None:
    conf = tenant_dir(cat_dir) / "tenant.toml"
    conf.write_text(conf.read_text().replace('images = "link"', 'images = "embed"'))
    tenant, users = records(cat_dir)
    found = resolve(users["avery.quill@example.com"], tenant, EXT, NOV)
    assert found.signature is not None
    (image,) = found.signature.images
    assert image.content_type == "image/png" and image.data.startswith(b"\x89PNG")
    assert f'src="cid:{image.cid}"' in found.signature.html


def test_linked_images_use_base_url(cat_dir: Path) -> None:
    tenant, users = records(cat_dir)
    found = resolve(users["avery.quill@example.com"], tenant, EXT, NOV)
    assert found.signature is not None and found.signature.images == ()
    assert 'src="https://www.example.com/signature/logo.png"' in found.signature.html


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('client_signature = "remove"', "client_signature must be 'replace' or 'keep'"),
        ('replace_texts = "Old disclaimer"', "replace_texts must be a list of non-empty strings"),
        ('replace_texts = [""]', "replace_texts must be a list of non-empty strings"),
        ('replace_patterns = ["(unclosed"]', "replace_patterns: '(unclosed': not a regular"),
        ('replace_patterns = [".*"]', "replace_patterns: '.*': matches empty text"),
        (
            f'replace_patterns = ["{"x" * 501}"]',
            f"replace_patterns: '{'x' * 40}'… is longer than 500 characters",
        ),
    ],
)
def test_replace_settings_checked(cat_dir: Path, setting: str, message: str) -> None:
    conf = tenant_dir(cat_dir) / "tenant.toml"
    body = conf.read_text().replace('client_signature = "replace"\n', "")
    body = body.replace('replace_texts = ["Sent from Mail for Windows"]\n', "")
    conf.write_text(setting + "\n" + body)
    with pytest.raises(CatalogError) as info:
        load_catalog(cat_dir)
    assert f"{conf}: {message}" in str(info.value)


def test_replace_settings_reach_the_tenant_record(cat_dir: Path) -> None:
    conf = tenant_dir(cat_dir) / "tenant.toml"
    body = conf.read_text().replace('client_signature = "replace"\n', 'client_signature = "keep"\n')
    conf.write_text('replace_patterns = ["Confidential: .{1,80}"]\n' + body)
    tenant, _ = records(cat_dir)
    assert tenant.client_signature == "keep"
    assert tenant.replace_texts == (r"Sent\s+from\s+Mail\s+for\s+Windows", "Confidential: .{1,80}")
