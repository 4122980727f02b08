"""How a prompt carries the report: the tags ``logic/summarize.py`` writes and a model reads.

The user message wraps the report in ``<report>`` tags (one tagged block per prompt: the report, a
section of it, or the section overviews of a long one). A repair request quotes the model's previous
reply in ``<previous_reply>`` tags *before* repeating the original request, report included.

Bedrock's models read these tags as the prompt's instructions describe them; the local stand-in model
(``local/medsum_local``) has no instructions to follow and finds the report with :func:`extract_report`.
Both sides import this module, so neither can change the framing alone; changing a tag changes the
prompt text, and with it ``medsum.models.PROMPT_VERSION``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PREVIOUS_REPLY_TAG", "REPORT_TAG", "carries_report", "extract_report", "tagged"]

#: Wraps the report (or the part of it) a prompt asks about.
REPORT_TAG: Final = "report"
#: Wraps the model's previous reply in a repair request.
PREVIOUS_REPLY_TAG: Final = "previous_reply"


def tagged(tag: str, text: str) -> str:
    """``text`` on its own lines between ``<tag>`` and ``</tag>``."""
    return f"<{tag}>\n{text}\n</{tag}>"


def carries_report(user_text: str) -> bool:
    """Whether a user message carries a tagged report (a repair turn may carry only the reply)."""
    return f"<{REPORT_TAG}>" in user_text


def extract_report(user_text: str) -> str:
    """The report inside ``<report>…</report>`` in a prompt, or the whole prompt when untagged.

    The report starts at the first ``<report>`` after any ``</previous_reply>`` (so a quoted
    previous reply cannot hijack it) and ends at the last ``</report>`` (so a report that happens
    to contain the tag is kept whole). Surrounding whitespace is the prompt's layout and is
    stripped, so a quote taken from the result is also a substring of the submitted report.

    Parameters
    ----------
    user_text
        The user message.

    Returns
    -------
    str
        The report (or section, or overviews) the message asks about.
    """
    opening_tag, closing_tag = f"<{REPORT_TAG}>", f"</{REPORT_TAG}>"
    after_reply = user_text.rfind(f"</{PREVIOUS_REPLY_TAG}>")
    opening = user_text.find(opening_tag, max(after_reply, 0))
    closing = user_text.rfind(closing_tag)
    if opening < 0 or closing < opening:
        return user_text.strip()
    return user_text[opening + len(opening_tag) : closing].strip()
