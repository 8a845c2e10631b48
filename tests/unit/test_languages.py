"""The gateway's language list, and that the gateway checks it without faster_whisper."""

from __future__ import annotations

import subprocess
import sys

import faster_whisper.tokenizer

from shared.languages import WHISPER_LANGUAGES


def test_the_list_is_the_one_the_installed_faster_whisper_knows() -> None:
    assert frozenset(faster_whisper.tokenizer._LANGUAGE_CODES) == WHISPER_LANGUAGES


def test_validating_a_language_imports_no_faster_whisper() -> None:
    script = (
        "import sys\n"
        "from services.gateway.main import create_app\n"
        "from services.gateway.options import JobOptions\n"
        "assert JobOptions(language='DE').language == 'de'\n"
        "assert 'faster_whisper' not in sys.modules, 'the gateway imported faster_whisper'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
