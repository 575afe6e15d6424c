#!/usr/bin/env python3
"""Generate one realistic ~20 KB multipart/alternative (text + HTML) e-mail.

Deterministic (fixed seed), Outlook-like: several Received/DKIM/ARC-ish
headers, RFC 2047 encoded From/Subject, a text/plain and a text/html part,
both UTF-8 + quoted-printable, a quoted reply chain, a small table and a
bloated <style> block -- roughly what a corporate mail relay sees.

Written with LF line endings (smtp-source -F appends CRLF to every line;
the harness's own Python client converts LF to CRLF itself).

usage: make_message.py OUT.eml [--size BYTES] [--seed N]

Copied from the workshop's bench harness (shared/bench/make_message.py; only
reformatted): the stack benchmark (bench_stack.py) sends this 21,008-byte message so
that its numbers compare with the workshop's table and with issue 14's measurements.
"""
# ruff: noqa: UP031 - the copy keeps the original's %-formatting (same bytes out)

import argparse
import quopri
import random
from email.header import Header

WORDS = [
    "the",
    "project",
    "budget",
    "review",
    "quarter",
    "meeting",
    "proposal",
    "customer",
    "delivery",
    "schedule",
    "contract",
    "update",
    "please",
    "find",
    "attached",
    "summary",
    "regarding",
    "next",
    "steps",
    "invoice",
    "forecast",
    "team",
    "feedback",
    "approval",
    "deadline",
    "revised",
    "scope",
    "requirements",
    "integration",
    "rollout",
    "migration",
    "support",
    "ticket",
    "escalation",
    "Müller",
    "Straße",
    "Größe",
    "Grüße",
    "naïve",
    "café",
    "résumé",
    "—",
    "“quoted”",
    "5",
    "€",
    "20",
    "%",
    "we",
    "would",
    "like",
    "to",
    "confirm",
    "that",
    "the",
    "figures",
    "are",
    "correct",
    "and",
    "aligned",
    "with",
    "finance",
    "before",
    "Friday",
    "thanks",
    "for",
    "your",
    "patience",
    "and",
    "the",
    "quick",
    "turnaround",
]


def sentence(rng, lo=8, hi=22):
    n = rng.randint(lo, hi)
    s = " ".join(rng.choice(WORDS) for _ in range(n))
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])


def paragraph(rng, lo=2, hi=5):
    return " ".join(sentence(rng) for _ in range(rng.randint(lo, hi)))


def qp(text):
    """UTF-8 + quoted-printable body, LF line endings, lines <= 76."""
    raw = text.replace("\r\n", "\n").encode("utf-8")
    enc = quopri.encodestring(raw, quotetabs=False)
    return enc.decode("ascii")


def build(size=20000, seed=20251126):
    rng = random.Random(seed)
    boundary = f"_000_DB9PR07MB{rng.getrandbits(32):08X}EURPRD07PROD_"

    # ---- text/plain part -------------------------------------------------
    paras = []
    paras.append("Hi Jonas,")
    for _ in range(4):
        paras.append(paragraph(rng))
    paras.append("Best regards,\nAnna")
    quoted = [
        "",
        "-----Original Message-----",
        "From: Jonas Weber <jonas.weber@example.org>",
        "Sent: Tuesday, 25 November 2025 16:02",
        "To: Anna Müller <anna.mueller@example.com>",
        "Subject: RE: Q4 Größe der Lieferung / revised schedule",
        "",
    ]
    for _ in range(5):
        quoted.append(paragraph(rng))
        quoted.append("")
    text = "\n\n".join(paras) + "\n" + "\n".join(quoted)

    # ---- text/html part (Outlook style) ---------------------------------
    style = "\n".join(
        "p.MsoNormal%d, li.MsoNormal%d, div.MsoNormal%d\n"
        '\t{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;'
        "mso-fareast-language:EN-US;color:#1F497D;}" % (i, i, i)
        for i in range(14)
    )
    body_html = []
    body_html.append('<p class="MsoNormal">Hi Jonas,<o:p></o:p></p>')
    body_html.append('<p class="MsoNormal"><o:p>&nbsp;</o:p></p>')
    for _ in range(4):
        body_html.append(
            '<p class="MsoNormal"><span lang="EN-US" style='
            f'"mso-fareast-language:DE">{paragraph(rng)}<o:p></o:p></span></p>'
        )
    rows = []
    for i in range(8):
        rows.append(
            '<tr><td style="border:solid #BFBFBF 1.0pt;padding:0cm '
            '5.4pt 0cm 5.4pt">Item %d</td><td style="border:solid '
            '#BFBFBF 1.0pt;padding:0cm 5.4pt">%s</td><td style="'
            "border:solid #BFBFBF 1.0pt;padding:0cm 5.4pt;text-align:"
            'right">%d,%02d €</td></tr>'
            % (i + 1, sentence(rng, 3, 6), rng.randint(100, 9999), rng.randint(0, 99))
        )
    body_html.append(
        '<table class="MsoTableGrid" border="1" cellspacing="0" '
        'cellpadding="0" style="border-collapse:collapse;border:'
        'none">{}</table>'.format("".join(rows))
    )
    body_html.append('<p class="MsoNormal">Best regards,<br>Anna<o:p></o:p></p>')
    body_html.append(
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;'
        'padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>From:'
        "</b> Jonas Weber &lt;jonas.weber@example.org&gt;<br><b>"
        "Sent:</b> Tuesday, 25 November 2025 16:02<br><b>To:</b> "
        "Anna Müller &lt;anna.mueller@example.com&gt;<br><b>Subje"
        "ct:</b> RE: Q4 Größe der Lieferung / revised schedule"
        "<o:p></o:p></p></div>"
    )
    for _ in range(5):
        body_html.append(f'<p class="MsoNormal">{paragraph(rng)}<o:p></o:p></p>')

    def html_doc(parts):
        return (
            '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:'
            'schemas-microsoft-com:office:office" xmlns:w="urn:schemas-mic'
            'rosoft-com:office:word" xmlns:m="http://schemas.microsoft.com'
            '/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">'
            '\n<head>\n<meta http-equiv="Content-Type" content="text/html; '
            'charset=utf-8">\n<meta name="Generator" content="Microsoft '
            'Word 15 (filtered medium)">\n<style><!--\n'
            + style
            + '\n--></style>\n</head>\n<body lang="DE" link="#0563C1" vlink='
            '"#954F72" style="word-wrap:break-word">\n<div class="WordSect'
            'ion1">\n' + "\n".join(parts) + "\n</div>\n</body>\n</html>\n"
        )

    # grow/shrink the quoted history until the whole message is ~size bytes
    def render(text, html):
        from_hdr = Header("Anna Müller", "utf-8").encode()
        subj_hdr = Header(
            "RE: Q4 Größe der Lieferung / revised schedule – Freigabe bis Freitag", "utf-8"
        ).encode()
        hdrs = [
            "Received: from EUR05-DB8-obe.outbound.protection.example.net "
            "(mail-db8eur05on2100.outbound.protection.example.net [192.0.2.100])\n"
            "\tby mx1.example.org (Postfix) with ESMTPS id 4dGq1x2Kx9z9sWl\n"
            "\tfor <jonas.weber@example.org>; Wed, 26 Nov 2025 09:14:03 +0100 (CET)",
            "Received: from DB9PR07MB7100.eurprd07.prod.example.net "
            "(2603:10a6:10:2b1::12) by\n\tDB9PR07MB7101.eurprd07.prod.example.net "
            "(2603:10a6:10:2b2::9) with Microsoft\n\tSMTP Server (version=TLS1_2, "
            "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\n\t15.20.8182.17; "
            "Wed, 26 Nov 2025 08:14:01 +0000",
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;\n"
            "\ts=selector1; h=From:Date:Subject:Message-ID:Content-Type:MIME-Version;\n"
            "\tbh=Yk3nA0uE9vCk2X8m0lQ3mW6b7Z0z8n5y2fV1tq4sJgE=;\n"
            "\tb=OqN5nHk0cW3gE1pZ8tY2vU7sR6qL4mK9jH3gF2dS1aQ0wE9rT8yU7iO6pA5sD4fG\n"
            "\t 3hJ2kL1zX0cV9bN8mQ7wE6rT5yU4iO3pA2sD1fG0hJ9kL8zX7cV6bN5mQ4wE3rT2y\n"
            "\t U1iO0pA9sD8fG7hJ6kL5zX4cV3bN2mQ1wE0rT9yU8iO7pA6sD5fG4hJ3kL2zX1c=",
            f"From: {from_hdr} <anna.mueller@example.com>",
            "To: Jonas Weber <jonas.weber@example.org>",
            'CC: "Team Finance" <finance@example.com>',
            f"Subject: {subj_hdr}",
            "Thread-Topic: Q4 =?utf-8?Q?Gr=C3=B6=C3=9Fe?= der Lieferung",
            "Thread-Index: AdteqV0cXUq1y2bIRS2QW3nJxkLmWwAABc3g",
            "Date: Wed, 26 Nov 2025 08:14:00 +0000",
            "Message-ID: <DB9PR07MB7100A1B2C3D4E5F6A7B8C9D0E1F2@DB9PR07MB7100."
            "eurprd07.prod.example.net>",
            "References: <AM0PR07MB5555F0E1D2C3B4A59687@AM0PR07MB5555.eurprd07.prod.example.net>",
            "In-Reply-To: <AM0PR07MB5555F0E1D2C3B4A59687@AM0PR07MB5555.eurprd07.prod.example.net>",
            "Accept-Language: de-DE, en-US",
            "Content-Language: de-DE",
            "X-MS-Has-Attach:",
            "X-MS-TNEF-Correlator:",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative;\n\tboundary="{boundary}"',
        ]
        out = "\n".join(hdrs) + "\n\n"
        out += f"--{boundary}\n"
        out += (
            'Content-Type: text/plain; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n"
        )
        out += qp(text)
        if not out.endswith("\n"):
            out += "\n"
        out += f"\n--{boundary}\n"
        out += (
            'Content-Type: text/html; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n"
        )
        out += qp(html)
        if not out.endswith("\n"):
            out += "\n"
        out += f"\n--{boundary}--\n"
        return out

    msg = render(text, html_doc(body_html))
    while len(msg.encode()) < size:
        extra = paragraph(rng)
        text += "\n" + extra + "\n"
        body_html.append(f'<p class="MsoNormal">{extra}<o:p></o:p></p>')
        msg = render(text, html_doc(body_html))
    return msg.encode("ascii")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20251126)
    a = ap.parse_args()
    data = build(a.size, a.seed)
    with open(a.out, "wb") as f:
        f.write(data)
    print("%s: %d bytes" % (a.out, len(data)))


if __name__ == "__main__":
    main()
