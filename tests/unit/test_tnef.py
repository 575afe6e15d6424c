"""TNEF (winmail.dat): counted with its class, converted when the tenant asks, else passed.

Every corpus sample either converts (HTML body and every attachment's name and bytes as
tnefparse/RTFDE read them from the TNEF, our signature once) or passes byte-identical
with a reason; none raises.
"""

from __future__ import annotations

import base64
import email.policy
import json
import re
import shutil
import struct
from email.message import EmailMessage
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from sigfilter.catalog import CatalogError, compile_catalog, load_catalog
from sigfilter.catalog.compiled import TenantRecord
from sigfilter.cli import main
from sigfilter.engine import Options, rewrite, rewritten_message
from sigfilter.mime.headers import parse_header_block
from sigfilter.mime.tnef import TnefRefused, check_frames, class_label, read_tnef
from sigfilter.mime.tnefmime import param
from sigfilter.signature import wrap_html
from support import SIG_TOKEN, SIGNATURE, parse
from tnefdata import (
    FILES,
    corpus_message,
    exchange_message,
    held_attachments,
    held_html,
    tnef_in,
)

# What each sample is (tests/corpus/tnef/MANIFEST.tsv, and for the verb stream of
# rich-text.eml its bytes: Yes/No/Maybe voting verbs): the class counted when passed,
# and what conversion does.
EXPECTED = {
    "mimekit-ukr.eml": ("IPM.Note", "signed"),  # HTML + text, the {EMAILSIGNATURE} marker
    "body.tnef": ("IPM.Note", "signed"),  # HTML only
    "tnefparse-umlaut.tnef": ("IPM.Note", "signed"),  # \fromhtml RTF, umlaut file name
    "teamwork-winmail.dat": ("IPM.Note", "signed"),  # HTML + 3 inline images
    "mimekit-rich-text.eml": ("IPM.Note", "tnef-voting"),  # Yes/No/Maybe voting buttons
    "mimekit-winmail.tnef": ("IPM.Note", "tnef-ole"),  # two embedded OLE objects
    "rtf.tnef": ("IPM.Note", "tnef-no-body"),  # RTF that holds no HTML, no plain body
    "triples.tnef": ("IPM.Appointment", "tnef-calendar"),
    "panic.tnef": ("", "tnef-damaged"),  # base64 text after the last attribute
    "tnefparse-IPM-DistList.tnef": ("", "tnef-damaged"),  # checksums do not add up
}


def test_every_corpus_file_has_an_expectation() -> None:
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES)
def test_pass_mode_passes_byte_identical_and_names_the_class(name: str) -> None:
    raw = corpus_message(name)
    result = rewrite(raw, SIGNATURE, Options(tnef="pass"))
    assert (result.action, result.reason) == ("skipped", "tnef")
    assert result.tnef_class == EXPECTED[name][0]
    assert rewritten_message(raw, result) == raw


@pytest.mark.parametrize("name", FILES)
def test_convert_mode_converts_or_passes_with_a_reason(name: str) -> None:
    raw = corpus_message(name)
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    want = EXPECTED[name][1]
    if want != "signed":
        assert (result.action, result.reason) == ("skipped", want), result.detail
        assert rewritten_message(raw, result) == raw
        return
    assert result.action == "signed", (result.reason, result.detail)
    assert result.tnef_class == "IPM.Note"
    out = rewritten_message(raw, result)
    _assert_converted(raw, out)


def _leaves(msg: EmailMessage) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_filename() is None:
            found.setdefault(part.get_content_subtype(), str(part.get_content()))
    return found


_OURS = re.compile(r'<div class="sigfilter-signature"><!--sigfilter-->.*?</(table|p)></div>', re.S)


def _without_signature(html: str) -> str:
    """The HTML with our signature block taken out (charset entities and all)."""
    assert wrap_html("")[:-6] in html
    return _OURS.sub("", html, count=1)


def _text(html: str) -> str:
    """The text a reader sees (markup and runs of white space aside)."""
    return " ".join(lxml.html.fromstring(html).text_content().split())


def _assert_converted(raw: bytes, out: bytes) -> None:
    tnef = tnef_in(raw)
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    assert all(p.get_content_type() != "application/ms-tnef" for p in msg.walk())
    leaves = _leaves(msg)
    for text in leaves.values():
        assert text.count(SIG_TOKEN) == 1, "the signature once in each text part"
    html = held_html(tnef)
    if html is not None:
        want = _text(html.replace("{EMAILSIGNATURE}", ""))
        assert _text(_without_signature(leaves["html"])) == want
    got = sorted(
        (str(p.get_filename()), bytes(p.get_payload(decode=True)))  # type: ignore[arg-type]
        for p in msg.walk()
        if p.get_filename() is not None
    )
    assert got == held_attachments(tnef)
    _assert_headers_kept(raw, out)


_MAY_CHANGE = {"content-type", "mime-version"}


def _assert_headers_kept(raw: bytes, out: bytes) -> None:
    h_in, h_out = parse_header_block(raw), parse_header_block(out)
    before = [raw[f.start : f.end] for f in h_in.fields if f.name not in _MAY_CHANGE]
    after = [out[f.start : f.end] for f in h_out.fields if f.name not in _MAY_CHANGE]
    assert before == after


def test_the_real_exchange_sample_keeps_its_own_text_part_and_replaces_the_marker() -> None:
    raw = corpus_message("mimekit-ukr.eml")
    result = rewrite(raw, SIGNATURE, Options(tnef="convert", mode="marker"))
    assert result.signed and result.placement == "marker"
    out = rewritten_message(raw, result)
    assert "{EMAILSIGNATURE}" not in str(_leaves(parse(out)))
    # The Exchange text/plain part is carried over: its header lines are still there.
    text_head = re.search(rb"--[^\r\n]+\r?\n(Content-Type: text/plain[^\r\n]*\r?\n)", raw)
    assert text_head is not None and text_head.group(1) in out


def test_non_ascii_attachment_name_is_kept() -> None:
    raw = corpus_message("tnefparse-umlaut.tnef")
    out = rewritten_message(raw, rewrite(raw, SIGNATURE, Options(tnef="convert")))
    names = [p.get_filename() for p in parse(out).walk() if p.get_filename()]
    assert "UmlautAnhang-äüö.txt" in names
    assert b"filename*=utf-8''UmlautAnhang-%C3%A4%C3%BC%C3%B6.txt" in out


def test_inline_images_are_related_to_the_html_by_content_id() -> None:
    raw = corpus_message("teamwork-winmail.dat")
    msg = parse(rewritten_message(raw, rewrite(raw, SIGNATURE, Options(tnef="convert"))))
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    html = next(p for p in related.walk() if p.get_content_type() == "text/html")
    cids = [str(p["Content-ID"]).strip("<>") for p in related.walk() if p["Content-ID"]]
    assert len(cids) == 3
    assert all(f"cid:{cid}" in str(html.get_content()) for cid in cids)


def test_marker_mode_without_marker_passes_the_tnef_unchanged() -> None:
    raw = corpus_message("body.tnef")
    result = rewrite(raw, SIGNATURE, Options(tnef="convert", mode="marker"))
    assert (result.action, result.reason, result.tnef_class) == ("skipped", "no-marker", "IPM.Note")
    assert rewritten_message(raw, result) == raw


# -- layouts and skip rules that come first -----------------------------------------------

BODY_TNEF = (Path(__file__).resolve().parents[1] / "corpus" / "tnef" / "body.tnef").read_bytes()


def test_tnef_beside_another_attachment_is_not_converted() -> None:
    raw = exchange_message(BODY_TNEF).replace(
        b"--_000_TNEF_--\r\n",
        b"--_000_TNEF_\r\nContent-Type: application/pdf\r\n\r\nJVBE\r\n--_000_TNEF_--\r\n",
    )
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    assert (result.reason, result.tnef_class) == ("tnef-layout", "IPM.Note")
    assert rewritten_message(raw, result) == raw


def test_signed_message_with_tnef_inside_stays_a_signed_skip() -> None:
    inner = exchange_message(BODY_TNEF)
    head, _, body = inner.partition(b"\r\n\r\n")
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/signed; "
        b'protocol="application/pkcs7-signature"; boundary="S"\r\n\r\n--S\r\n'
        + b'Content-Type: multipart/mixed; boundary="_000_TNEF_"\r\n\r\n'
        + body
        + b"\r\n--S\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--S--\r\n"
    )
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    assert result.reason == "signed-smime"


def test_whole_message_tnef_converts() -> None:
    raw = (
        b"From: Avery Quill <avery.quill@example.com>\r\nTo: j@example.com\r\n"
        b"Content-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(BODY_TNEF).replace(b"\n", b"\r\n")
    )
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    assert result.signed
    out = rewritten_message(raw, result)
    h_out = parse_header_block(out)
    assert h_out.get("content-transfer-encoding").value == "7bit"  # type: ignore[union-attr]
    assert h_out.get("mime-version") is not None and h_out.get("subject") is not None
    assert "Bill of Rights" in str(parse(out)["Subject"])  # from the TNEF, none was there


def test_broken_base64_is_damaged_not_an_error() -> None:
    raw = exchange_message(BODY_TNEF).replace(b"eJ8+", b"e*8+", 1)
    raw = raw.replace(
        b"Content-Transfer-Encoding: base64\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n\r\n="
    )
    result = rewrite(raw, SIGNATURE, Options(tnef="convert"))
    assert result.action == "skipped" and result.reason.startswith("tnef")


# -- bounds on hostile TNEF ---------------------------------------------------------------


def _attr(level: int, ident: int, kind: int, data: bytes) -> bytes:
    check = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, ident, kind, len(data)) + data + struct.pack("<H", check)


def _stream(*attrs: bytes) -> bytes:
    return struct.pack("<IH", 0x223E9F78, 1) + b"".join(attrs)


def test_a_huge_property_count_is_stopped_by_the_work_budget() -> None:
    # attMAPIProps claiming 2**32-1 multi-valued PT_SHORT properties: tnefparse would
    # loop for billions of rounds (each round costs no input bytes).
    props = struct.pack("<IHHI", 0xFFFFFFFF, 0x1002, 0x0001, 0xFFFFFFFF)
    data = _stream(_attr(1, 0x9006, 8, struct.pack("<I", 0x10000)), _attr(1, 0x9003, 6, props))
    assert check_frames(data) == 2
    with pytest.raises(TnefRefused) as refused:
        read_tnef(data)
    assert refused.value.reason == "tnef-damaged" and "budget" in refused.value.detail


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "no TNEF signature"),
        (struct.pack("<IH", 0x223E9F78, 1) + b"\x01\x02", "trailing bytes"),
        (_stream(_attr(1, 0x9003, 6, b"ab"))[:-1], "runs past the end"),
        (_stream(_attr(3, 0x9003, 6, b"ab")), "unknown attribute"),
        (_stream(_attr(1, 0x1234, 6, b"ab")), "unknown attribute"),
        (_stream(_attr(2, 0x800F, 6, b"ab")), "before its start"),
        (_stream(_attr(1, 0x9003, 6, b"ab"))[:-2] + b"\x00\x00", "bad checksum"),
    ],
)
def test_framing_problems_are_refused_before_tnefparse_runs(data: bytes, detail: str) -> None:
    with pytest.raises(TnefRefused) as refused:
        check_frames(data)
    assert refused.value.reason == "tnef-damaged" and detail in refused.value.detail


@pytest.mark.parametrize(
    ("klass", "label"),
    [
        ("IPM.Note", "IPM.Note"),
        ("ipm.note", "IPM.Note"),
        ("IPM.Note.SMIME.MultipartSigned", "IPM.Note.SMIME.MultipartSigned"),
        ("IPM.Note.SMIME", "IPM.Note.SMIME"),
        ("IPM.Schedule.Meeting.Request", "IPM.Schedule.Meeting.*"),
        ("IPM.TaskRequest.Accept", "IPM.TaskRequest.*"),
        ("<script>", "other"),
        ("", "unknown"),
    ],
)
def test_class_labels_are_a_fixed_set(klass: str, label: str) -> None:
    assert class_label(klass) == label


# -- the tenant setting ---------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def _catalog(tmp_path: Path, line: str) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, root)
    toml = root / "tenants" / "example.com" / "tenant.toml"
    text = toml.read_text("utf-8").replace('tnef = "pass"\n', line + "\n")
    assert line in text
    toml.write_text(text, "utf-8")
    return root


def test_tnef_setting_defaults_to_pass_and_is_published(tmp_path: Path) -> None:
    cat = load_catalog(EXAMPLE)
    assert cat.tenants["example.com"].tnef == "pass"
    records = compile_catalog(load_catalog(_catalog(tmp_path, 'tnef = "convert"')))
    assert TenantRecord.from_json(records["tenant:example.com"]).tnef == "convert"
    old = TenantRecord.from_json(b'{"key":"k","name":"n","domains":[],"mode":"full",'
                                 b'"marker":"m","plain_to_html":false,"return_host":"",'
                                 b'"tenant_id":"","internal_domains":[]}')  # fmt: skip
    assert old.tnef == "pass"  # a record published before the setting existed


def test_a_bad_tnef_setting_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog(_catalog(tmp_path, 'tnef = "unpack"'))
    assert "tnef must be one of pass, convert, not 'unpack'" in str(err.value)
    assert "tenant.toml" in str(err.value)


def test_email_package_reads_our_parameters_back() -> None:
    for name in ("plain.txt", 'quo"te.txt', "Grüße.pdf", "日本.doc"):
        msg = email.message_from_bytes(
            b"Content-Disposition: attachment; " + param("filename", name).encode() + b"\r\n\r\nx",
            policy=email.policy.default,
        )
        assert msg.get_filename() == name


# -- preview --------------------------------------------------------------------------------


def test_preview_shows_the_converted_message(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "corpus" / "tnef" / "mimekit-ukr.eml"
    args = ["preview", "--catalog", str(EXAMPLE), "--sender", "avery.quill@example.com"]
    out = tmp_path / "out.eml"
    runner = CliRunner()
    passed = runner.invoke(main, [*args, "--json", str(src), "-o", str(out)])
    assert passed.exit_code == 0, passed.output
    decision = json.loads(passed.stderr.strip().splitlines()[-1])
    assert (decision["reason"], decision["tnef_class"]) == ("tnef", "IPM.Note")
    assert out.read_bytes() == src.read_bytes()
    converted = runner.invoke(main, [*args, "--tnef", "convert", str(src), "-o", str(out)])
    assert converted.exit_code == 0, converted.output
    assert "action=signed" in converted.stderr and "tnef_class=IPM.Note" in converted.stderr
    msg = parse(out.read_bytes())
    assert msg.get_content_type() == "multipart/mixed"
    assert not any(p.get_content_type() == "application/ms-tnef" for p in msg.walk())
    assert all(t.count(SIG_TOKEN) == 1 for t in _leaves(msg).values())
