"""The shortcuts HTML placement takes to read element text give the old answers.

Placement reads element text many times per message; the cheaper forms here must be
equal to the forms they replaced, for every input (tests/bench/engine_digest.py
compares the engine's answers over the corpus; these pin the pieces).
"""

from __future__ import annotations

import re
import sys

from hypothesis import given
from hypothesis import strategies as st

from sigfilter.placement.html import _norm

WHITESPACE = re.compile(r"\s+")


def test_regex_whitespace_is_str_whitespace_on_every_code_point() -> None:
    # _norm splits with str.split(); the regex form it replaced used re's \s.
    spaces = re.compile(r"\s")
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        assert bool(spaces.match(ch)) == ch.isspace(), hex(cp)


@given(st.text(alphabet=st.sampled_from("ab \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000é"), max_size=40))
def test_norm_is_the_regex_form(text: str) -> None:
    assert _norm(text) == WHITESPACE.sub(" ", text).strip()
