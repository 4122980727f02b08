"""ROUGE-L: the longest common subsequence of words between a summary and a reference (Lin, 2004).

Implemented here because no ROUGE library is a dependency of medsum (``rouge-score`` would be the one to
add). Tokens as ``rouge-score`` makes them without stemming: lower-cased runs of ``[a-z0-9]``; the score
is the F1 of LCS precision (LCS / summary tokens) and recall (LCS / reference tokens).

ROUGE-L measures word overlap, not clinical agreement: "No acute cardiopulmonary abnormality." scores
high against most normal impressions while saying nothing about an abnormal one (docs/eval.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RougeL", "rouge_l", "tokens"]

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RougeL:
    """ROUGE-L of one summary against one reference."""

    precision: float
    recall: float
    f1: float


def tokens(text: str) -> list[str]:
    """The lower-cased alphanumeric words of ``text``."""
    return _TOKEN.findall(text.lower())


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for index, other in enumerate(b, start=1):
            current.append(previous[index - 1] + 1 if word == other else max(previous[index], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(summary: str, reference: str) -> RougeL:
    """ROUGE-L of ``summary`` against ``reference``.

    Parameters
    ----------
    summary
        The candidate text.
    reference
        The reference text (e.g. the radiologist's impression).

    Returns
    -------
    RougeL
        Precision, recall and F1; all ``0.0`` when either text has no word.

    Examples
    --------
    >>> round(rouge_l("no acute disease", "no acute cardiopulmonary disease").f1, 3)
    0.857
    """
    candidate, target = tokens(summary), tokens(reference)
    if not candidate or not target:
        return RougeL(0.0, 0.0, 0.0)
    common = _lcs_length(candidate, target)
    if common == 0:
        return RougeL(0.0, 0.0, 0.0)
    precision, recall = common / len(candidate), common / len(target)
    return RougeL(precision, recall, 2 * precision * recall / (precision + recall))
