"""The language codes Whisper knows, as a job's `language` option may name them.

Kept here rather than imported from faster_whisper: its list is a private name
(`faster_whisper.tokenizer._LANGUAGE_CODES`), and importing faster_whisper takes most
of a second, which the gateway (that never runs a model) has no reason to spend.
tests/unit/test_languages.py checks this list against the installed faster_whisper.
"""

from __future__ import annotations

# One string, split, to read as a table (the order is faster_whisper's).
WHISPER_LANGUAGES: frozenset[str] = frozenset(
    """
    af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu
    ha haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml
    mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw
    ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue
    """.split()  # noqa: SIM905
)
