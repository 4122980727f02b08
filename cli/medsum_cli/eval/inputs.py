"""What ``medsum eval`` reads: the references (reports and what they should say) and the results to score.

References are JSON Lines, one report a line. By default a line is
``{"custom_id", "report_text", "impression"?, "labels"?, "report_type"?, "patient_id"?}``; other layouts
are read through a :class:`FieldMap` (``--id-field``, ``--text-field`` ...). The IU chest X-ray layout
(``id``, ``full_text``, ``findings``, ``impression``) is recognised by itself. A line needs a reference:
an ``impression`` text, ``labels`` (observation -> ``1`` / ``0`` / ``-1`` / ``null``, CheXpert's
encoding), or both (then the labels are the reference and the impression is used for ROUGE-L).

Results are what ``medsum batch results`` writes, one ``{"custom_id", "report_id", "status", "summary",
"error"}`` object a line; lines written by ``medsum eval --save-results`` also carry ``usage``,
``created_at`` and ``updated_at``.

Pure functions: the command reads the files and hands their bytes here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from medsum_cli.eval.labeler import OBSERVATIONS, PATHOLOGIES, Label, Labels, label_text

__all__ = [
    "DEFAULT_FIELDS",
    "IU_FIELDS",
    "Case",
    "EvalInputError",
    "FieldMap",
    "Result",
    "detect_fields",
    "findings_section",
    "parse_labels",
    "read_references",
    "read_results",
    "remove_impression",
    "result_from_line",
    "with_usage",
]


class EvalInputError(Exception):
    """A references or results file cannot be used (the message names the line)."""


@dataclass(frozen=True)
class FieldMap:
    """Which field of a references line holds what.

    Attributes
    ----------
    id
        The report's id, joined with the results' ``custom_id``.
    text
        The report text to summarize.
    impression
        The reference impression (optional per line when ``labels`` is there).
    labels
        Reference labels (optional).
    findings
        The FINDINGS section, for the baselines; when absent it is cut from the text.
    """

    id: str = "custom_id"
    text: str = "report_text"
    impression: str = "impression"
    labels: str = "labels"
    findings: str | None = None


DEFAULT_FIELDS = FieldMap()
#: The IU chest X-ray development set (../shared/data/iu-cxr/README.md).
IU_FIELDS = FieldMap(id="id", text="full_text", impression="impression", findings="findings")


@dataclass(frozen=True)
class Case:
    """One reference report.

    Attributes
    ----------
    custom_id
        Its id.
    report_text
        The text sent to the model (without its IMPRESSION section with ``--without-impression``).
    impression
        The reference impression, or None.
    labels
        The reference labels: given in the file, else those of the impression.
    findings
        The FINDINGS section (the baselines' material).
    report_type, patient_id
        Sent with the report in stack mode, when the line has them.
    """

    custom_id: str
    report_text: str
    impression: str | None
    labels: Labels
    findings: str
    report_type: str | None = None
    patient_id: str | None = None


@dataclass(frozen=True)
class Result:
    """One result line.

    Attributes
    ----------
    custom_id
        Joins the result with its reference.
    status
        ``COMPLETED``, ``FAILED``, ``ERRORED`` (a line the API rejected) ...
    summary
        The summary (a JSON object) when completed.
    report_id
        The API's report id, when the API accepted the line.
    usage
        ``{"model_id", "input_tokens", "output_tokens", ...}`` when known.
    latency_seconds
        ``updated_at - created_at`` of the report, when both are known.
    """

    custom_id: str
    status: str
    summary: Mapping[str, Any] | None = None
    report_id: str | None = None
    usage: Mapping[str, Any] | None = None
    latency_seconds: float | None = None


_HEADER = re.compile(r"(?im)^[ \t]*([A-Z][A-Za-z /&()-]{1,40}?)[ \t]*:")
_IMPRESSION_HEADER = re.compile(r"^(?:impressions?|conclusions?|opinion)$", re.I)
_FINDINGS_HEADER = re.compile(r"^findings?$", re.I)
_LABEL_NAMES = {re.sub(r"[^a-z]", "", name.lower()): name for name in OBSERVATIONS}


def _sections(text: str) -> list[tuple[str, int, int, int]]:
    """``(header, header_start, body_start, body_end)`` of every ``HEADER:`` that starts a line."""
    found = [(m.group(1).strip(), m.start(), m.end()) for m in _HEADER.finditer(text)]
    return [
        (name, start, body, found[index + 1][1] if index + 1 < len(found) else len(text))
        for index, (name, start, body) in enumerate(found)
    ]


def remove_impression(text: str) -> tuple[str, bool]:
    """Remove the IMPRESSION (or CONCLUSION, OPINION) section, header included, from a report.

    Parameters
    ----------
    text
        The report.

    Returns
    -------
    tuple
        ``(text, removed)``: the report without the section (the sections after it are kept), and
        whether there was one to remove.
    """
    for name, start, _body, end in _sections(text):
        if _IMPRESSION_HEADER.match(name):
            return (text[:start].rstrip() + "\n\n" + text[end:].lstrip()).strip(), True
    return text, False


def findings_section(text: str) -> str:
    """The FINDINGS section of a report, or, when it has none, the report without its IMPRESSION."""
    for name, _start, body, end in _sections(text):
        if _FINDINGS_HEADER.match(name):
            return " ".join(text[body:end].split())
    return " ".join(remove_impression(text)[0].split())


def parse_labels(value: Any) -> Labels:
    """Read reference labels: ``{"Pleural Effusion": 1, "Edema": 0, "Pneumonia": -1, ...}``.

    Names are matched ignoring case, spaces and punctuation (``pleural_effusion`` works); values are
    ``1``, ``0``, ``-1`` or ``null``; a missing observation is ``null``. No Finding, when not given, is
    derived as CheXpert does (``1`` unless a pathology is ``1`` or ``-1``).

    Raises
    ------
    ValueError
        If ``value`` is not an object, a name is unknown or a value is not one of those.
    """
    if not isinstance(value, Mapping):
        raise ValueError("labels must be an object of observation -> 1, 0, -1 or null")
    values: dict[str, int | None] = {name: None for name in OBSERVATIONS}
    for raw_name, raw_value in value.items():
        name = _LABEL_NAMES.get(re.sub(r"[^a-z]", "", str(raw_name).lower()))
        if name is None:
            raise ValueError(f"unknown observation {raw_name!r} in labels")
        if raw_value is not None and (isinstance(raw_value, bool) or raw_value not in (1, 0, -1)):
            raise ValueError(f"label of {name} must be 1, 0, -1 or null, not {raw_value!r}")
        values[name] = raw_value
    if values["No Finding"] is None:
        finding = any(values[name] in (Label.POSITIVE, Label.UNCERTAIN) for name in PATHOLOGIES)
        values["No Finding"] = int(Label.NEGATIVE if finding else Label.POSITIVE)
    elif values["No Finding"] != Label.POSITIVE:
        values["No Finding"] = int(Label.NEGATIVE)
    return Labels(values=values)


def _json_lines(data: bytes, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{source} is not UTF-8 text") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{source}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(value, dict):
            raise EvalInputError(f"{source}:{number}: not a JSON object")
        yield number, value


def detect_fields(first: Mapping[str, Any]) -> FieldMap:
    """The field map of a references file from its first line: the IU layout, else the default."""
    if "custom_id" not in first and {"id", "full_text", "impression"} <= first.keys():
        return IU_FIELDS
    return DEFAULT_FIELDS


def _text(line: Mapping[str, Any], name: str, where: str, *, required: bool) -> str | None:
    value = line.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise EvalInputError(f"{where}: field {name!r} must be a non-empty string")
    return value


def read_references(
    data: bytes,
    source: str,
    fields: FieldMap | None = None,
    *,
    without_impression: bool = False,
    limit: int | None = None,
) -> tuple[list[Case], int]:
    """Read a references file.

    Parameters
    ----------
    data
        The file's bytes (JSON Lines).
    source
        Its name, for messages.
    fields
        The field map; None detects it from the first line (:func:`detect_fields`).
    without_impression
        Remove the IMPRESSION section from each report text (the reference is unchanged).
    limit
        Read only the first ``limit`` reports.

    Returns
    -------
    tuple
        ``(cases, impressions_not_found)``: the reports, and how many had no IMPRESSION section to remove.

    Raises
    ------
    EvalInputError
        A line is not a JSON object, lacks its id or text, has neither impression nor labels, has
        invalid labels, or repeats an id; or the file has no report.
    """
    cases: list[Case] = []
    seen: dict[str, int] = {}
    not_found = 0
    for number, line in _json_lines(data, source):
        if limit is not None and len(cases) >= limit:
            break
        if fields is None:
            fields = detect_fields(line)
        where = f"{source}:{number}"
        custom_id = line.get(fields.id)
        if not isinstance(custom_id, str) or not custom_id:
            raise EvalInputError(f"{where}: field {fields.id!r} must be a non-empty string (see --id-field)")
        if custom_id in seen:
            raise EvalInputError(f"{where}: {fields.id} {custom_id!r} already on line {seen[custom_id]}")
        seen[custom_id] = number
        text = _text(line, fields.text, where, required=True) or ""
        impression = _text(line, fields.impression, where, required=False)
        raw_labels = line.get(fields.labels)
        if raw_labels is not None:
            try:
                labels = parse_labels(raw_labels)
            except ValueError as exc:
                raise EvalInputError(f"{where}: {exc}") from exc
        elif impression is not None and impression.strip():
            labels = label_text(impression)
        else:
            raise EvalInputError(
                f"{where}: no reference: neither {fields.impression!r} nor {fields.labels!r} "
                "(see --impression-field, --labels-field)"
            )
        findings = None
        if fields.findings is not None:
            findings = _text(line, fields.findings, where, required=False)
        if findings is None:
            findings = findings_section(text)
        if without_impression:
            text, removed = remove_impression(text)
            not_found += not removed
        report_type = line.get("report_type")
        patient_id = line.get("patient_id")
        cases.append(
            Case(
                custom_id=custom_id,
                report_text=text,
                impression=impression,
                labels=labels,
                findings=" ".join(findings.split()),
                report_type=report_type if isinstance(report_type, str) else None,
                patient_id=patient_id if isinstance(patient_id, str) else None,
            )
        )
    if not cases:
        raise EvalInputError(f"{source} has no reports (one JSON object a line)")
    return cases, not_found


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def result_from_line(line: Mapping[str, Any]) -> Result:
    """One :class:`Result` from a results line (or a report view with a ``custom_id``)."""
    created, updated = _timestamp(line.get("created_at")), _timestamp(line.get("updated_at"))
    latency = (updated - created).total_seconds() if created and updated else None
    summary, usage, report_id = line.get("summary"), line.get("usage"), line.get("report_id")
    return Result(
        custom_id=str(line.get("custom_id")),
        status=str(line.get("status") or "UNKNOWN"),
        summary=summary if isinstance(summary, Mapping) else None,
        report_id=report_id if isinstance(report_id, str) else None,
        usage=usage if isinstance(usage, Mapping) else None,
        latency_seconds=latency,
    )


def read_results(data: bytes, source: str) -> tuple[dict[str, Result], int]:
    """Read a results file.

    Parameters
    ----------
    data
        The file's bytes (JSON Lines, as ``medsum batch results`` writes them).
    source
        Its name, for messages.

    Returns
    -------
    tuple
        ``(results, without_id)``: results by ``custom_id``, and how many lines had no ``custom_id``
        (input lines the API rejected before reading one).

    Raises
    ------
    EvalInputError
        A line is not a JSON object, or a ``custom_id`` appears twice.
    """
    results: dict[str, Result] = {}
    without_id = 0
    for number, line in _json_lines(data, source):
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            without_id += 1
            continue
        if custom_id in results:
            raise EvalInputError(f"{source}:{number}: custom_id {custom_id!r} appears twice")
        results[custom_id] = result_from_line(line)
    return results, without_id


def with_usage(result: Result, report: Mapping[str, Any]) -> Result:
    """``result`` completed with the ``usage`` and timings of its report view (``GET /reports/{id}``)."""
    fetched = result_from_line({**report, "custom_id": result.custom_id})
    return replace(
        result,
        usage=fetched.usage if fetched.usage is not None else result.usage,
        latency_seconds=fetched.latency_seconds
        if fetched.latency_seconds is not None
        else result.latency_seconds,
    )
