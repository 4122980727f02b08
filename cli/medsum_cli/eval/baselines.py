"""Baselines: what copying would give, scored in the same run on the same reports as the model.

- ``normal sentence``: the constant "No acute cardiopulmonary abnormality." for every report. On chest
  X-ray sets where most impressions are normal it scores well on ROUGE-L and No-Finding accuracy while
  missing every finding.
- ``first FINDINGS sentence``: the first sentence of the report's FINDINGS section.
- ``all FINDINGS``: the whole FINDINGS section, copied.

A baseline has no items: its text is labelled as a summary sentence.
"""

from __future__ import annotations

from medsum_cli.eval.labeler import split_sentences

__all__ = ["BASELINES", "NORMAL_SENTENCE", "baseline_texts"]

NORMAL_SENTENCE = "No acute cardiopulmonary abnormality."
#: Baseline names, in display order.
BASELINES: tuple[str, ...] = ("normal sentence", "first FINDINGS sentence", "all FINDINGS")


def baseline_texts(findings: str) -> dict[str, str]:
    """The text of each baseline for one report.

    Parameters
    ----------
    findings
        The report's FINDINGS section (:func:`medsum_cli.eval.inputs.findings_section`).

    Returns
    -------
    dict
        Baseline name (:data:`BASELINES`) -> its summary text.

    Examples
    --------
    >>> baseline_texts("Heart size normal. Small left effusion.")["first FINDINGS sentence"]
    'Heart size normal.'
    """
    sentences = split_sentences(findings)
    return {
        BASELINES[0]: NORMAL_SENTENCE,
        BASELINES[1]: sentences[0] if sentences else "",
        BASELINES[2]: findings,
    }
