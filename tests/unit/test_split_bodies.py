"""Bodies split around inline photos (iOS and Apple Mail), and the examples of issue 13."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigfilter.cli import main
from sigfilter.engine import rewrite, rewritten_message
from support import SIG_TOKEN, SIGNATURE, assert_only_leaves_changed, decoded_leaves, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "messages"
OURS = '<div class="sigfilter-signature">'
HEAD = "From: Avery Quill <avery.quill@example.com>\r\nTo: j@example.net\r\nSubject: x\r\n"
IMAGE = (
    "Content-Type: image/jpeg; name=IMG_1.jpeg\r\nContent-Disposition: inline; "
    "filename=IMG_1.jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRgABAQ==\r\n"
)


def text(body: str) -> str:
    return "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body


def html(body: str) -> str:
    return "Content-Type: text/html; charset=us-ascii\r\n\r\n" + body


def multipart(kind: str, boundary: str, parts: list[str]) -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts)
    return f'Content-Type: multipart/{kind}; boundary="{boundary}"\r\n\r\n{inner}--{boundary}--'


def test_iphone_photo_between_text_parts() -> None:
    first = "Here is the rack:"
    raw = (
        HEAD
        + multipart(
            "mixed",
            "m",
            [text(first), IMAGE, text("\r\n\r\nCables done.\r\n\r\nSent from my iPhone")],
        )
        + "\r\n"
    ).encode()
    result = rewrite(raw, SIGNATURE)
    assert result.signed and result.parts == ("text/plain:footer",)
    out = rewritten_message(raw, result)
    texts = [p.get_content() for p in parse(out).walk() if p.get_content_type() == "text/plain"]
    assert texts[0] == first  # the earlier part is untouched
    assert "Sent from my iPhone" not in texts[1] and texts[1].count(SIG_TOKEN) == 1
    assert texts[1].index("Cables done.") < texts[1].index(SIG_TOKEN)
    second = raw.index(b"--m\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\r\n")
    assert out.startswith(raw[:second])  # the first part and the photo: byte-identical


def test_apple_mail_html_alternative_split_too() -> None:
    html_parts = [
        html("<html><body><div>Look:</div>"),
        IMAGE,
        html("<div>Done.</div><br><div>Sent from my iPad</div></body></html>"),
    ]
    raw = (
        HEAD
        + multipart(
            "alternative",
            "a",
            [
                text("Look:\r\n\r\n\r\nDone.\r\n\r\nSent from my iPad"),
                multipart("mixed", "m", html_parts),
            ],
        )
        + "\r\n"
    ).encode()
    result = rewrite(raw, SIGNATURE)
    assert result.signed and result.parts == ("text/plain:footer", "text/html:footer")
    out = rewritten_message(raw, result)
    htmls = [p.get_content() for p in parse(out).walk() if p.get_content_type() == "text/html"]
    assert htmls[0] == "<html><body><div>Look:</div>"
    assert OURS in htmls[1] and "Sent from my iPad" not in htmls[1]
    assert decoded_leaves(out)["html"].count(OURS) == 1
    assert_only_leaves_changed(raw, out)


def test_named_text_part_after_the_photo_is_an_attachment() -> None:
    note = "Content-Type: text/plain; name=notes.txt\r\n\r\nSent from my iPhone"
    raw = (
        HEAD
        + multipart("mixed", "m", [text("Hi\r\n\r\nSent from my iPhone"), IMAGE, note])
        + "\r\n"
    ).encode()
    out = rewritten_message(raw, rewrite(raw, SIGNATURE))
    assert out.endswith(b"name=notes.txt\r\n\r\nSent from my iPhone\r\n--m--\r\n")
    assert decoded_leaves(out)["plain"].count(SIG_TOKEN) == 1


@pytest.mark.parametrize(
    ("name", "replaced", "old"),
    [
        ("outlook-desktop-signature.eml", "typed-signature", "Head of Mail Flow | Example Corp"),
        ("owa-reply-signature.eml", "outlook-web", "Old Title"),
        ("iphone-inline-photo.eml", None, "Sent from my iPhone"),
    ],
)
def test_examples(name: str, replaced: str | None, old: str, tmp_path: Path) -> None:
    target = tmp_path / name
    catalog = ROOT / "examples" / "catalog"
    run = CliRunner().invoke(
        main,
        ["preview", "--catalog", str(catalog), "--json", "-o", str(target), str(EXAMPLES / name)],
    )
    decision = json.loads(run.stderr)
    assert (decision["action"], decision["replaced"]) == ("signed", replaced)
    out = target.read_bytes()
    leaves = decoded_leaves(out)
    for kind, body in leaves.items():
        new = body.split("From: Jane")[0].split("From:</b> Jane")[0]
        assert old not in new
        assert new.count(OURS if kind == "html" else "Avery Quill") == 1
    msg = parse(out)
    if name.startswith("owa"):
        assert [p["Content-ID"] for p in msg.walk() if p["Content-ID"]] == []  # logo gone
        assert 'id="x_Signature"><p>Jane Roe<br>Finance' in leaves["html"]
    if name.startswith("iphone"):
        assert [p.get_content_type() for p in msg.walk()][2] == "image/jpeg"
