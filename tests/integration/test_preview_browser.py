"""The preview page in a real browser: Debian's chromium, headless, driven by
Playwright (its own browser downloads are never used: `executable_path`).

The server is the real `sigfilter catalog preview --serve` on loopback over a copy of
the example catalog; the tests edit that copy's files as an admin's editor would and
check what the page shows in the DOM. Screenshots go to build/screenshots/ (or
$SIGFILTER_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Frame, Page, expect, sync_playwright

from harness.previewctl import PreviewServer
from sigfilter.cli import main

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "examples" / "messages"
CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make deps`)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path(os.environ.get("SIGFILTER_SCREENSHOTS", ROOT / "build" / "screenshots"))
WAIT_MS = 30_000  # generous: a loaded machine; these are waits, not speed limits
AVERY = "avery.quill@example.com"
IN_BANNER = "2026-12-01"  # the example's webinar banner runs 2026-11-15 to 2026-12-10
TEMPLATES = Path("tenants") / "example.com" / "templates" / "default"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium missing: `make deps` installs Debian's chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, server: PreviewServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    expect(page.locator(f"#users button[data-email='{AVERY}']")).to_be_visible()
    try:
        yield page
    finally:
        context.close()
    assert errors == []  # no script error on the page


def html_frame(page: Page, selector: str = "#html-frame") -> Frame:
    frame = page.frame_locator(selector)
    return frame.owner.content_frame()  # type: ignore[return-value]


def choose(page: Page, variant: str, scope: str, day: str = IN_BANNER) -> None:
    page.locator(f"#users button[data-email='{AVERY}']").click()
    page.check(f"input[name=variant][value={variant}]")
    page.check(f"input[name=scope][value={scope}]")
    page.fill("#date", day)
    page.locator("#date").dispatch_event("change")


def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a picture, not an empty file
    print(f"screenshot: {path}")
    return path


def test_lists_users_and_shows_the_reply_banner_for_external(page: Page) -> None:
    users = page.locator("#users button")
    expect(users).to_have_count(2)
    expect(users.nth(0)).to_contain_text("Avery Quill")
    expect(users.nth(0)).to_contain_text("Head of Mail Flow")
    expect(users.nth(1)).to_contain_text("noreply@example.com")
    page.fill("#search", "quill")
    expect(users).to_have_count(1)
    page.fill("#search", "")
    expect(users).to_have_count(2)

    choose(page, "reply", "external")
    frame = page.frame_locator("#html-frame")
    expect(frame.locator("body")).to_contain_text("Join our winter webinar")
    # the reply template: one line, bold name; the banner's link
    expect(frame.locator("td")).to_have_text("Avery Quill · Head of Mail Flow · +1 555 0100")
    expect(frame.locator("td b")).to_have_text("Avery Quill")
    link = frame.locator("a")
    expect(link).to_have_text("register here")
    expect(link).to_have_attribute("href", "https://www.example.com/webinar")
    expect(page.locator("#text-sig")).to_have_text(
        "-- \nAvery Quill | Head of Mail Flow | +1 555 0100\n\n"
        "Join our winter webinar on mail flow, 10 December: https://www.example.com/webinar"
    )
    expect(page.locator("#decision")).to_contain_text('rule "Webinar banner on external mail"')
    expect(page.locator("#decision")).to_contain_text("banner shown on this date")
    screenshot(page, "preview-avery-reply-external.png")

    page.check("input[name=scope][value=internal]")  # internal mail: no banner
    expect(frame.locator("body")).not_to_contain_text("webinar")
    expect(frame.locator("a")).to_have_count(0)
    page.check("input[name=variant][value=new]")  # the default template: a row per field
    expect(frame.locator("tr")).to_have_count(5)  # name, title, department, phone, logo
    expect(frame.locator("img")).to_have_attribute("src", "/images/example.com/logo.png")
    assert frame.locator("img").evaluate("img => img.naturalWidth") > 0  # the logo loaded
    page.select_option("#width", "375")
    expect(page.locator("#html-frame")).to_have_js_property("offsetWidth", 375)


def test_saved_template_changes_the_page_without_a_reload(page: Page, catalog: Path) -> None:
    choose(page, "reply", "external")
    frame = page.frame_locator("#html-frame")
    expect(frame.locator("td")).to_contain_text("Avery Quill")
    page.evaluate("window.notReloaded = true")
    reply = catalog / TEMPLATES / "reply.html"
    reply.write_text(reply.read_text().replace("&middot; {{ phone }}", "&middot; Mail Team"))
    expect(frame.locator("td")).to_have_text("Avery Quill · Head of Mail Flow · Mail Team")
    text = catalog / TEMPLATES / "reply.txt"
    text.write_text("-- \n{{ display_name }}, {{ department }}\n")
    expect(page.locator("#text-sig")).to_contain_text("Avery Quill, IT")
    assert page.evaluate("window.notReloaded") is True  # the same page, not reloaded


def test_broken_template_shows_its_file_and_line(page: Page, catalog: Path) -> None:
    choose(page, "reply", "external")
    reply = catalog / TEMPLATES / "reply.html"
    good = reply.read_text()
    reply.write_text(good.replace("{{ job_title }}", "{{ job_title "))
    problems = page.locator("#problem-list li")
    expect(page.locator("#problems")).to_be_visible()
    check = CliRunner().invoke(main, ["catalog", "check", str(catalog)])
    expected = [line.strip() for line in check.stderr.splitlines()[1:]]
    assert expected and expected[0].startswith(f"{reply}:2: ")
    expect(problems).to_have_text(expected)
    # the last version that compiled stays on the page
    expect(page.frame_locator("#html-frame").locator("td b")).to_have_text("Avery Quill")
    screenshot(page, "preview-template-error.png")
    reply.write_text(good)
    expect(page.locator("#problems")).to_be_hidden()


def test_dropped_message_comes_back_signed(page: Page) -> None:
    eml = MESSAGES / "iphone-reply.eml"
    data = base64.b64encode(eml.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "message/rfc822" }));
            return dt;
        }""",
        [eml.name, data],
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#drop-result")).to_be_visible()
    rows = page.locator("#drop-decision")
    expect(rows.locator("tr[data-field=action] td")).to_have_text("signed")
    expect(rows.locator("tr[data-field=reason] td")).to_have_text("ok")
    expect(rows.locator("tr[data-field=placement] td")).to_have_text("footer")
    expect(rows.locator("tr[data-field=variant] td")).to_have_text("reply")
    expect(rows.locator("tr[data-field=sender] td")).to_have_text(AVERY)
    frame = page.frame_locator("#drop-html")
    expect(frame.locator(".sigfilter-signature")).to_contain_text("Avery Quill")
    expect(frame.locator("body")).not_to_contain_text("Sent from my iPhone")
    expect(page.locator("#drop-text")).to_contain_text("Avery Quill | Head of Mail Flow")
    page.locator("#drop-result details summary").click()
    expect(page.locator("#drop-source")).to_contain_text("--=20\nAvery Quill | Head of Mail Flow")
    screenshot(page, "preview-dropped-message.png")
