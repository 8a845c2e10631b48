"""Word error rate over normalised text: lowercase, punctuation stripped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})
_NOT_WORD = re.compile(r"[^\w\s]|_")


def normalise(text: str) -> list[str]:
    """Lowercase words with punctuation removed ("Don't," -> "dont")."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    text = text.replace("'", "")
    return _NOT_WORD.sub(" ", text).split()


@dataclass(frozen=True)
class WerResult:
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_words


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> WerResult:
    """Levenshtein alignment of two word lists; counts each kind of edit."""
    # Each cell holds (cost, substitutions, deletions, insertions); rows over the reference.
    previous = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_word in enumerate(reference, start=1):
        current = [(i, 0, i, 0)]
        for j, hyp_word in enumerate(hypothesis, start=1):
            diag = previous[j - 1]
            if ref_word == hyp_word:
                best = diag
            else:
                up, left = previous[j], current[j - 1]
                best = min(
                    (diag[0] + 1, diag[1] + 1, diag[2], diag[3]),
                    (up[0] + 1, up[1], up[2] + 1, up[3]),
                    (left[0] + 1, left[1], left[2], left[3] + 1),
                )
            current.append(best)
        previous = current
    cost, subs, dels, ins = previous[-1]
    assert cost == subs + dels + ins
    return WerResult(subs, dels, ins, len(reference))


def word_error_rate(reference: str, hypothesis: str) -> float:
    return align(normalise(reference), normalise(hypothesis)).wer


def corpus_error_rate(pairs: Sequence[tuple[str, str]]) -> float:
    """WER over many (reference, hypothesis) files: all errors over all reference words,
    so a long file weighs more than a short one."""
    results = [align(normalise(ref), normalise(hyp)) for ref, hyp in pairs]
    words = sum(r.reference_words for r in results)
    errors = sum(r.errors for r in results)
    return errors / words if words else (1.0 if errors else 0.0)
