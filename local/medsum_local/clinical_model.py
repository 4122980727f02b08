"""A deterministic, extractive clinical summarizer that stands in for the LLM in the offline stack.

It returns exactly what the worker asks Bedrock for (see ``medsum.models.ModelSummary``)::

    {"summary": str,
     "key_findings": [{"text": str, "evidence": [verbatim quote, ...], "certainty": str}],
     "diagnoses": [...], "medications": [...], "follow_up": [...], "allergies": [...]}

Every evidence quote is an exact substring of the report, because every quote is a slice of it.

How it works, in order:

1. **Sections.** Headers such as ``FINDINGS:``, ``Impression:``, ``DISCHARGE MEDICATIONS``, SOAP's
   ``S:`` / ``A:`` / ``P:`` (own line or inline) split the text into typed sections; text before the
   first header is the preamble.
2. **Sentences.** Each section body is cut into sentences (wrapped lines are joined, enumerated
   lists and line-oriented sections are split per item). Offsets into the original text are kept. A
   sentence that interprets the one before it ("This may represent atelectasis.") is joined to it.
3. **Negation and hedges** come from the service's own NegEx/ConText module
   (``medsum.logic.negation``, the one the verifier uses): "no focal consolidation, pneumothorax, or
   pleural effusion" negates every item, "infiltrates and engorgement have resolved" both, "no
   change" nothing; "suggestive of", "cannot be excluded", "versus" make a statement uncertain.
4. **Classification.** What is left of a sentence is cut into clauses (never inside a hedge: "opacity,
   pneumonia cannot be excluded" is one). A clause is *positive* when it names an abnormality
   (lexicon), *normal* when it only says normal / clear / unremarkable, or only stable / unchanged
   without an abnormality ("stable mild cardiomegaly" is positive), and in FINDINGS / IMPRESSION /
   DIAGNOSIS sections any other contentful clause is positive too.
5. **Extraction.** Positive clauses in findings-like sections become key findings; positive clauses
   in impression / assessment / diagnosis sections become diagnoses (without their "consistent with"
   lead-in; a hedge is never cut off; a bare result such as "Positive" or "18 percent" is none);
   dose-bearing lines or lines under a medications header become medications (lab values are not);
   sentences with a follow-up cue ("recommend", "repeat lipid panel in 6 to 8 weeks", "reflex FISH to
   follow", ...) become follow-up items (the reason for a visit is not one); the lines of an allergy
   section and "allergic to X" / "X allergy" become allergies ("NKDA" is none).
6. **Summary.** One to three sentences, positive statements first and the most significant first
   (acute, then active disease, then other abnormalities; chronic or incidental findings such as a
   granuloma only when nothing else is found, and said to be only that), then what the impression
   rules out, then follow-up. "No acute abnormality reported." only when nothing positive was found.

All functions are pure: no I/O, no randomness, no logging.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, NotRequired, TypedDict

from medsum.logic.negation import analyze
from medsum.prompting import extract_report

__all__ = [
    "NO_ACUTE_ABNORMALITY",
    "Item",
    "ModelOutput",
    "Section",
    "SectionKind",
    "Sentence",
    "negated_spans",
    "split_sections",
    "split_sentences",
    "summarize_prompt",
    "summarize_report",
]

NO_ACUTE_ABNORMALITY = "No acute abnormality reported."

# Limits of the worker's ModelSummary / ModelItem models: stay inside them.
_MAX_ITEMS = 50
_MAX_EVIDENCE = 10
_MAX_FIELD_CHARS = 2_000
_MAX_SUMMARY_CHARS = 4_000


class Item(TypedDict):
    """One extracted item: a short statement, the verbatim quotes that support it and, for findings
    and diagnoses, whether the report hedges it."""

    text: str
    evidence: list[str]
    certainty: NotRequired[Literal["definite", "uncertain"]]


class ModelOutput(TypedDict):
    """The JSON object the worker asks the model to return."""

    summary: str
    key_findings: list[Item]
    diagnoses: list[Item]
    medications: list[Item]
    follow_up: list[Item]
    allergies: list[Item]


class SectionKind(StrEnum):
    PREAMBLE = "preamble"
    FINDINGS = "findings"
    IMPRESSION = "impression"
    DIAGNOSIS = "diagnosis"
    ASSESSMENT = "assessment"
    ASSESSMENT_PLAN = "assessment_plan"
    PLAN = "plan"
    MEDICATIONS = "medications"
    FOLLOW_UP = "follow_up"
    HISTORY = "history"
    TECHNIQUE = "technique"
    ALLERGIES = "allergies"
    RESULTS = "results"
    ADMIN = "admin"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Section:
    """A section of the report; ``text[start:end]`` is its body (header excluded)."""

    kind: SectionKind
    header: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence (or list item); ``text[start:end]`` is it, enumerators and bullets excluded."""

    start: int
    end: int
    section: SectionKind


Label = Literal["positive", "normal", "neutral"]


@dataclass(frozen=True, slots=True)
class _Clause:
    start: int
    end: int
    label: Label
    uncertain: bool = False


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------
# Order matters: the first keyword found in the upper-cased header decides its kind.
_HEADER_KEYWORDS: tuple[tuple[tuple[str, ...], SectionKind], ...] = (
    (
        (
            "SIGNED",
            "DICTATED",
            "TRANSCRIBED",
            "ELECTRONICALLY",
            "ATTENDING",
            "RADIOLOGIST",
            "PHYSICIAN",
            "PROVIDER",
            "ACCESSION",
            "MRN",
            "DOB",
            "DATE",
            "TIME",
            "NAME",
            "CC",
        ),
        SectionKind.ADMIN,
    ),
    (("ALLERG",), SectionKind.ALLERGIES),
    (("MEDICATION", "MEDS", "PRESCRIPTION"), SectionKind.MEDICATIONS),
    (("FOLLOW", "RECOMMEND", "DISPOSITION", "INSTRUCTION"), SectionKind.FOLLOW_UP),
    (
        (
            "PHYSICAL EXAM",
            "HOSPITAL COURSE",
            "COURSE",
            "OBJECTIVE",
            "RESULT",
            "LAB",
            "MICROSCOPIC",
            "GROSS",
            "DESCRIPTION",
            "VITAL",
            "DATA",
            "COMMENT",
            "NOTE",
        ),
        SectionKind.RESULTS,
    ),
    (
        (
            "ASSESSMENT AND PLAN",
            "ASSESSMENT & PLAN",
            "ASSESSMENT/PLAN",
            "IMPRESSION AND PLAN",
            "IMPRESSION/PLAN",
            "A/P",
        ),
        SectionKind.ASSESSMENT_PLAN,
    ),
    (("ASSESSMENT",), SectionKind.ASSESSMENT),
    (("IMPRESSION", "CONCLUSION", "INTERPRETATION", "OPINION"), SectionKind.IMPRESSION),
    (("DIAGNOS", "PROBLEM"), SectionKind.DIAGNOSIS),
    (("FINDING",), SectionKind.FINDINGS),
    (("PLAN",), SectionKind.PLAN),
    (
        ("HISTORY", "SUBJECTIVE", "INDICATION", "REASON", "CLINICAL", "COMPLAINT", "HPI", "PRESENTING"),
        SectionKind.HISTORY,
    ),
    (
        (
            "COMPARISON",
            "TECHNIQUE",
            "EXAMINATION",
            "EXAM",
            "PROCEDURE",
            "STUDY",
            "SPECIMEN",
            "PROTOCOL",
            "CONTRAST",
            "DOSE",
        ),
        SectionKind.TECHNIQUE,
    ),
)

# "NAME:" at the start of a line (the name may be mixed case), e.g. "FINDINGS: text" or "Impression:".
_LINE_HEADER = re.compile(
    r"^[ \t]*(?:[-*\u2022][ \t]*)?(?P<name>[A-Za-z][A-Za-z /&()'-]{0,48}?)[ \t]*:", re.M
)
# An upper-case header alone on its line, without a colon: "FINDINGS".
_BARE_HEADER = re.compile(r"^[ \t]*(?P<name>[A-Z][A-Z /&-]{2,48}?)[ \t\r]*$", re.M)
# A known header in the middle of a line, after a sentence end: "... chest. IMPRESSION: ...".
_INLINE_HEADER = re.compile(
    r"(?<=[.!?])[ \t]+(?P<name>(?i:findings|impression|conclusions?|recommendations?|follow[- ]?up|"
    r"diagnos[ie]s|final diagnosis|history|indication|comparison|technique|medications|plan|"
    r"assessment(?: and plan)?))[ \t]*:"
)


_PARENT_SECTIONS = frozenset(
    {
        SectionKind.FINDINGS,
        SectionKind.IMPRESSION,
        SectionKind.DIAGNOSIS,
        SectionKind.MEDICATIONS,
        SectionKind.RESULTS,
    }
)


# One-letter SOAP headers at the start of a line ("S: ...", "A: ..."); "S" is what the patient reports.
_SOAP_HEADERS = {
    "S": SectionKind.HISTORY,
    "O": SectionKind.RESULTS,
    "A": SectionKind.ASSESSMENT,
    "P": SectionKind.PLAN,
}


def _header_kind(name: str) -> SectionKind | None:
    upper = " ".join(name.upper().split())
    if upper in _SOAP_HEADERS:
        return _SOAP_HEADERS[upper]
    if not upper or set(upper.replace(" ", "")) <= {"X"}:  # "XXXX" is the de-identification mask
        return None
    for keywords, kind in _HEADER_KEYWORDS:
        if any(keyword in upper for keyword in keywords):
            return kind
    return None


def split_sections(text: str) -> list[Section]:
    """Split a report into typed sections.

    Parameters
    ----------
    text:
        The report text.

    Returns
    -------
    list[Section]
        Sections in document order. Text before the first header is a ``PREAMBLE`` section; a
        report without headers is one preamble section. Empty bodies are kept (a header with
        nothing after it), so the list describes the document's structure faithfully.
    """
    headers: list[tuple[int, int, str, SectionKind | None]] = []  # (start, body start, name, kind)
    for match in _LINE_HEADER.finditer(text):
        name = match.group("name").strip()
        kind = _header_kind(name)
        generic = kind is None and name.isupper() and len(name) >= 3 and set(name.replace(" ", "")) != {"X"}
        if kind is not None or generic:
            headers.append((match.start("name"), match.end(), name, kind))
    for pattern in (_BARE_HEADER, _INLINE_HEADER):
        for match in pattern.finditer(text):
            kind = _header_kind(match.group("name"))
            if kind is not None:
                headers.append((match.start("name"), match.end(), match.group("name").strip(), kind))

    headers.sort(key=lambda header: (header[0], -header[1]))
    deduped: list[tuple[int, int, str, SectionKind | None]] = []
    for header in headers:
        if deduped and header[0] < deduped[-1][1]:  # overlaps the previous header: keep the first
            continue
        deduped.append(header)

    sections: list[Section] = []
    first_start = deduped[0][0] if deduped else len(text)
    if text[:first_start].strip():
        sections.append(Section(SectionKind.PREAMBLE, "", 0, first_start))
    parent = SectionKind.PREAMBLE
    for index, (header_start, body_start, name, maybe_kind) in enumerate(deduped):
        body_end = deduped[index + 1][0] if index + 1 < len(deduped) else len(text)
        if maybe_kind is None and parent in _PARENT_SECTIONS:
            # An unknown upper-case header ("HEART:", "LEFT BREAST:") inside a findings, impression,
            # diagnosis or medication section is a sub-heading: it stays part of the text, because
            # "HEART: Mildly enlarged" needs its label.
            kind, body_start = parent, header_start
        elif maybe_kind is None:
            kind = SectionKind.OTHER
        else:
            kind = parent = maybe_kind
        sections.append(Section(kind, name, body_start, body_end))
    return sections


# --------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------
_LINE_ORIENTED = frozenset(
    {
        SectionKind.MEDICATIONS,
        SectionKind.DIAGNOSIS,
        SectionKind.ASSESSMENT_PLAN,
        SectionKind.PLAN,
        SectionKind.ALLERGIES,
    }
)
_ENUMERATOR = re.compile(r"(?:[-*\u2022]+|\(?\d{1,2}[.)](?!\d)|\(?[A-Za-z][.)](?=\s))\s*")
_LIST_START = re.compile(r"[ \t]*(?:[-*\u2022]|\(?\d{1,2}[.)](?!\d)|[A-Za-z][.)]\s)")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_ABBREVIATION = re.compile(
    r"(?i)(?:\b(?:dr|mr|mrs|ms|st|vs|approx|fig|pt|pts|inc|jr|sr|cf|al|nos|etc)|"
    r"\b(?:e\.g|i\.e|b\.i\.d|t\.i\.d|q\.i\.d|p\.o|p\.r\.n|q\.d|h\.s|a\.m|p\.m|q\.h\.s))$"
)
_NEXT_CHAR = re.compile(r"\s*(\S)")
_LEADING_LETTER = re.compile(r"\s*\(?[A-Za-z]")  # "A. Left breast": a list marker, not a sentence


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        line_end = end if newline == -1 else newline
        yield position, line_end
        position = line_end + 1


def _blocks(text: str, start: int, end: int, line_oriented: bool) -> Iterator[tuple[int, int]]:
    """Group lines into blocks: paragraphs of wrapped lines, or one block per list item."""
    block_start: int | None = None
    block_end = start
    previous = ""
    for line_start, line_end in _lines(text, start, end):
        line = text[line_start:line_end]
        stripped = line.strip()
        if not stripped:
            if block_start is not None:
                yield block_start, block_end
                block_start = None
            previous = ""
            continue
        new_block = (
            block_start is None
            or line_oriented
            or _LIST_START.match(line) is not None
            or previous.rstrip().endswith((".", "!", "?", ":", ";"))
            or len(previous.strip()) < 40
        )
        if new_block:
            if block_start is not None:
                yield block_start, block_end
            block_start = line_start
        block_end = line_end
        previous = line
    if block_start is not None:
        yield block_start, block_end


def _enumeration_breaks(block: str) -> list[int]:
    """Positions of "2.", "3.", ... in a block that starts with "1." (lists written on one line)."""
    match = re.match(r"\s*\(?1[.)]\s", block)
    if match is None:
        return []
    breaks: list[int] = []
    number, position = 2, match.end()
    while True:
        found = re.compile(rf"\s\(?{number}[.)]\s+(?=\S)").search(block, position)
        if found is None:
            return breaks
        breaks.append(found.start() + 1)
        number, position = number + 1, found.end()


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentences_in(text: str, start: int, end: int, kind: SectionKind) -> Iterator[Sentence]:
    for block_start, block_end in _blocks(text, start, end, kind in _LINE_ORIENTED):
        block = text[block_start:block_end]
        cuts = {0, len(block)}
        cuts.update(_enumeration_breaks(block))
        for match in _SENTENCE_END.finditer(block):
            following = _NEXT_CHAR.match(block, match.end())
            before_start = max(0, match.start() - 12)  # abbreviations are short: keep this linear
            if _ABBREVIATION.search(block, before_start, match.start()) or _LEADING_LETTER.fullmatch(
                block, 0, match.start()
            ):
                continue  # "Dr. Smith", "e.g. the", a leading "A." list marker
            if following is not None and not (
                following[1].isupper() or following[1].isdigit() or following[1] in "(\"'["
            ):
                continue  # "2.5 cm" never gets here; "approx. the" and friends do
            cuts.add(match.end())
        ordered = sorted(cuts)
        for piece_start, piece_end in itertools.pairwise(ordered):
            absolute_start, absolute_end = _trim(text, block_start + piece_start, block_start + piece_end)
            # Drop leading enumerators and bullets ("1.", "-", "a)") from the sentence span.
            while True:
                prefix = _ENUMERATOR.match(text, absolute_start, absolute_end)
                if prefix is None or prefix.end() == absolute_start:
                    break
                absolute_start = prefix.end()
            if any(char.isalpha() for char in text[absolute_start:absolute_end]):
                yield Sentence(absolute_start, absolute_end, kind)


def split_sentences(text: str, sections: Iterable[Section] | None = None) -> list[Sentence]:
    """Split a report into sentences with their section kind and offsets into ``text``.

    Parameters
    ----------
    text:
        The report text.
    sections:
        Sections from :func:`split_sections`; computed when omitted.

    Returns
    -------
    list[Sentence]
        Sentences in document order. List items (enumerated, bulleted, or lines of a
        line-oriented section such as medications) are sentences of their own.
    """
    chosen = split_sections(text) if sections is None else sections
    return [
        sentence
        for section in chosen
        for sentence in _sentences_in(text, section.start, section.end, section.kind)
    ]


# --------------------------------------------------------------------------------------------------
# Negation and hedges: the service's own NegEx/ConText module (``medsum.logic.negation``)
# --------------------------------------------------------------------------------------------------
_NEGATION_KINDS = frozenset({"PREN", "POST", "NEG", "PROB"})
# What may stand between a negation trigger and its scope: "has been" in "tubes have been removed".
_AUX_GAP = re.compile(
    r"[\s,]*(?:(?:is|are|was|were|has|have|had|been|be|being|now|since|also|again|completely|entirely|"
    r"subsequently|interval)\b[\s,]*)*",
    re.I,
)


def _merge_spans(spans: Iterable[tuple[int, int]], sentence: str) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or _AUX_GAP.fullmatch(sentence, merged[-1][1], start)):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True, slots=True)
class _Scopes:
    """Negated ranges of a sentence (scopes with their triggers) and its hedged (uncertain) ranges."""

    negated: list[tuple[int, int]]
    uncertain: tuple[tuple[int, int], ...]


def _scopes(sentence: str) -> _Scopes:
    context = analyze(sentence)
    scopes = list(context.negated_scopes)
    starts = [start for start, _ in scopes]
    # A trigger is masked with the scope it opened; one that negates nothing stays text ("The nodule seen
    # on CT is not seen on the radiograph": the nodule is not negated, and the clause keeps its words).
    triggers: list[tuple[int, int]] = []
    for cue in context.cues:
        if cue.kind not in _NEGATION_KINDS:
            continue
        index = bisect.bisect_left(starts, cue.start)  # the scopes right before and after the trigger
        near = scopes[max(0, index - 1) : index + 1]
        if any(_touches(sentence, cue.start, cue.end, *scope) for scope in near):
            triggers.append((cue.start, cue.end))
    return _Scopes(_merge_spans([*scopes, *triggers], sentence), context.uncertain_scopes)


def _touches(sentence: str, start: int, end: int, other_start: int, other_end: int) -> bool:
    if start < other_end and other_start < end:
        return True
    gap = (end, other_start) if end <= other_start else (other_end, start)
    return _AUX_GAP.fullmatch(sentence, *gap) is not None


def negated_spans(sentence: str) -> list[tuple[int, int]]:
    """Character ranges of ``sentence`` that are negated, with their triggers.

    Parameters
    ----------
    sentence:
        One sentence.

    Returns
    -------
    list[tuple[int, int]]
        Sorted, merged ``(start, end)`` ranges relative to ``sentence``: the negation scopes of
        ``medsum.logic.negation.analyze`` (NegEx/ConText: "no ...", "... has resolved", "X and Y have
        been removed", not "no change"), joined to their trigger phrases and auxiliaries, so what is
        left of the sentence is what it asserts.
    """
    return _scopes(sentence).negated


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, end)`` overlaps one of ``spans`` (sorted and non-overlapping), in O(log n)."""
    index = bisect.bisect_left(spans, (end,))  # first span starting at or after ``end``
    return index > 0 and spans[index - 1][1] > start


# --------------------------------------------------------------------------------------------------
# Lexicons
# --------------------------------------------------------------------------------------------------
# Terms that name an abnormality, a disease, a device or a procedure: positive wherever un-negated.
_STRONG_ABNORMAL = re.compile(
    r"\b(?:opacit\w*|infiltrat\w*|consolidat\w*|effusions?|pneumothora\w*|atelecta\w*|edema\w*|"
    r"congesti\w*|cardiomegal\w*|\w*megaly|\w*nodul\w*|mass(?:es)?|granulom\w*|\w*calcifi\w*|fractur\w*|"
    r"deformit\w*|\w*scolio\w*|\w*kypho\w*|\w*lordosis|\w*curvature|degenerat\w*|osteophyt\w*|spondyl\w*|"
    r"osteopen\w*|osteopor\w*|\w*arthritis|\w*arthrosis|arthropath\w*|scar\w*|fibros\w*|fibrotic|"
    r"emphysem\w*|hyperinfla\w*|hyperexpan\w*|hyperlucen\w*|hypoinfla\w*|hypoventilat\w*|"
    r"low\s+(?:lung\s+)?volumes?|bronchiect\w*|thicken\w*|blunt\w*|widen\w*|tortu\w*|ectasia|"
    r"aneurysm\w*|dilat\w*|pneumoni\w*|pneumonitis|infect\w*|airspace\s+disease|air\s+space\s+disease|"
    r"pneumoperitoneum|free\s+air|lucenc\w*|lytic|sclerotic|lesions?|tumou?rs?|neoplas\w*|cancer\w*|"
    r"\w*carcinoma\w*|malignan\w*|metasta\w*|lymphoma|sarcoma|melanoma|dysplas\w*|atypi\w*|"
    r"hyperplas\w*|polyps?|adenoma\w*|cyst\w*|abscess\w*|hemorrhag\w*|haemorrhag\w*|hematoma\w*|"
    r"bleed\w*|thromb\w*|embol\w*|infarct\w*|ischemi\w*|stenos\w*|occlu\w*|obstruct\w*|herniat\w*|"
    r"hernia\w*|collapse\w*|volume\s+loss|copd|chf|failure|cardiomyopath\w*|\w*adenopathy|"
    r"hypertroph\w*|hypertensi\w*|diabet\w*|seps\w*|septic|anemi\w*|anaemi\w*|exacerbation\w*|"
    r"injur\w*|\w+itis|\w+emia|\w+ectomy|\w+plasty|\w+otomy|\w+ostomy|postoperative|post-operative|"
    r"postsurgical|post-surgical|surgical|status\s+post|s/p|fusion|catheters?|tubes?|picc|"
    r"(?:central|venous|arterial|picc)\s+lines?|pacemakers?|pacers?|aicd|icd|wires?|clips?|"
    r"stents?|prosthe\w*|hardware|foreign\s+bod\w*|fragments?|shrapnel|bullet|cirrho\w*|necros\w*|"
    r"fever\w*|pain|dyspnea|hypoxi\w*|abnormal\w*|enthesophyt\w*|enthesopath\w*|eventration|"
    r"pleural\s+fluid|air\s+(?:fluid|bronchogram)\w*|opacification|inflam\w*|perforat\w*|swollen|swelling|"
    r"distend\w*|distension|engorge\w*|cephali[sz]ation|hyperlucen\w*)\b",
    re.I,
)
# Modifiers that suggest an abnormality but also occur in normal statements ("normal markings").
_WEAK_ABNORMAL = re.compile(
    r"\b(?:enlarg\w*|increas\w*|decreas\w*|prominen\w*|markings|interstitial|elevat\w*|irregular\w*|"
    r"mild\w*|moderate\w*|severe\w*|marked\w*|small|large|trace|minimal|chronic\w*|changes|disease|"
    r"suspicious|concerning|worrisome|questionable|possible|probable|new|developing|worsen\w*|"
    r"improv\w*|residual|persistent|loss|shift\w*|displace\w*|densit(?:y|ies)|lucent|"
    r"flatten\w*|crowd\w*|coarse\w*|haz[ey]\w*|streak\w*|bulg\w*)\b",
    re.I,
)
_NORMAL = re.compile(
    r"\b(?:normal\w*|clear\w*|unremarkable|intact|midline|negative|patent|"
    r"preserved|maintained|symmetric\w*|sharp|satisfactory|appropriate\w*|benign|well[- ]\w+|"
    r"within\s+(?:normal\s+)?limits|limits\s+of\s+normal|grossly|expected)\b",
    re.I,
)
# Words about time, not about normality: "stable mild cardiomegaly" is a finding, "heart size is stable"
# is not (a clause with only these and no abnormality is labelled like a normal one).
_TEMPORAL = re.compile(
    r"\b(?:stable|stably|unchanged|similar|again\s+(?:seen|noted)|redemonstrat\w*|persistent|"
    r"no\s+(?:\w+\s+)?change)\b",
    re.I,
)
_TECHNIQUE = re.compile(
    r"\b(?:views?|radiographs?|examination|exam|films?|projections?|study|studies|comparison|compared|"
    r"portable|frontal|lateral|pa|ap|supine|upright|technique|images?|obtained|performed|provided|"
    r"available|lordotic|dated?|x-\w*|xray\w*|limited|nondiagnostic|positioning|inspiration|"
    r"technically|underpenetrated|overpenetrated|rotat\w*)\b",
    re.I,
)
_DEVICE_OR_PROCEDURE = re.compile(
    r"\b(?:catheters?|tubes?|picc|lines?|pacemakers?|pacers?|aicd|icd|leads|wires?|clips?|stents?|"
    r"prosthe\w*|hardware|\w+ectomy|\w+plasty|\w+otomy|\w+ostomy|postoperative|post-operative|"
    r"postsurgical|post-surgical|surgical|status\s+post|s/p|fusion|position\w*|placement|tip)\b",
    re.I,
)
_STOPWORDS = frozenset(
    {
        *("a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "of", "in", "on", "at"),
        *("to", "for", "with", "and", "or", "there", "this", "that", "these", "those", "it", "its", "as"),
        *("by", "from", "again", "seen", "noted", "demonstrated", "identified", "present", "appears"),
        *("appear", "appearing", "remains", "remain", "also", "which", "has", "have", "had", "now"),
        *("prior", "previous", "specifically", "otherwise", "redemonstration", "redemonstrated"),
        *("visualized", "visible", "there's", "patient's", "patient"),
    }
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'/-]*")

_FOLLOW_UP_CUE = re.compile(
    r"\b(?:recommend\w*|follow[- ]?up|followup|follow\s+with|(?:may|might|could|would)\s+be\s+helpful|"
    r"repeat(?:ed)?\s+(?:\w+\s+){0,3}?(?:imaging|radiographs?|films?|study|ct|mri|x-?rays?|exam\w*|"
    r"chest|ultrasound|labs?|testing|panels?|levels?|tests?|cultures?|biopsy|echo\w*|ekg|ecg|cbc|bmp|cmp|"
    r"a1c|lipids?)|\w+\s+to\s+follow\b(?!\s+(?:commands?|instructions?|directions?))|return\s+(?:if|to|for|with)|consider\b|should\s+be\s+(?:obtained|"
    r"performed|considered)|is\s+suggested|are\s+suggested|suggest\s+(?:follow|repeat|correlation|"
    r"further|ct|mri)|advised?|clinical\s+correlation|correlate|re-?evaluat\w*|recheck\w*|schedul\w*|"
    r"appointment|outpatient|further\s+(?:evaluat\w*|characteri[sz]\w*|assess\w*|imaging|workup|work-up)|"
    r"(?:could|can|should|may)\s+be\s+(?:evaluated|assessed|characteri[sz]ed)\s+(?:with|by)|"
    r"in\s+\d+\s*(?:(?:-|to)\s*\d+\s*)?(?:days?|weeks?|months?|years?))\b",
    re.I,
)
# The reason for the visit, not an action: "S: Follow-up of hypertension.", "Here for follow-up of ...".
_VISIT_REASON = re.compile(
    r"^\W*(?:(?:the\s+)?(?:patient|pt|he|she)\s+(?:is\s+)?)?(?:(?:here|presents?|presenting|seen|returns?|"
    r"comes?|came|in)\s+)?(?:for\s+(?:a\s+)?)?(?:follow[- ]?up|followup)(?:\s+visit)?\s+"
    r"(?:of|for|on|after)\b",
    re.I,
)
_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:-\s*\d+(?:\.\d+)?\s*)?(?:mg|mcg|µg|ug|g|grams?|units?|u|iu|meq|mmol|mL|ml|"
    r"puffs?|tabs?|tablets?|capsules?|drops?)\b(?!\s*/\s*(?:d?l|dl|ml|l|min|mm3|ul|µl|hpf|24|g|mol|mmol)\b)",
    re.I,
)
_STRONG_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|ug|units?|iu|meq)\b(?!\s*/\s*(?:d?l|dl|ml|l|min|mm3|ul|µl|hpf|24|g)\b)",
    re.I,
)
_FREQUENCY = re.compile(
    r"\b(?:daily|once|twice|bid|b\.i\.d|tid|t\.i\.d|qid|q\.i\.d|qhs|q\.h\.s|qam|qpm|nightly|at\s+bedtime|"
    r"weekly|prn|p\.r\.n|as\s+needed|q\s?\d+\s?h(?:ours?|rs?)?|every\s+\d+\s+hours?|po|p\.o|iv|im|sc|"
    r"subcut\w*|sl|inhaled|topical\w*|orally|by\s+mouth)\b",
    re.I,
)
_NO_MEDICATIONS = re.compile(r"^\W*(?:none|nkda|no\s+(?:known\s+)?(?:medications?|meds|drug)\b|n/?a\b)", re.I)
_PLAN_VERB = re.compile(
    r"^\W*(?:continue|start|stop|hold|discontinue|increase|decrease|follow|return|repeat|obtain|check|"
    r"monitor|refer|consult|schedule|plan|will|recommend|consider|discharge|order|titrate|begin)\b",
    re.I,
)
_DIAGNOSIS_CUE = re.compile(
    r"\b(?:consistent\s+with|compatible\s+with|diagnostic\s+of|in\s+keeping\s+with)\s+",
    re.I,
)
# Words that, alone, do not make a diagnosis.
_NOT_A_DIAGNOSIS = frozenset(
    {
        *("positive", "negative", "equivocal", "indeterminate", "borderline", "present", "absent"),
        *("detected", "not", "none", "normal", "abnormal", "high", "low", "percent", "left", "right"),
        *("bilateral", "both", "side", "laterality", "yes", "no", "see", "above", "below", "comment"),
        *("result", "results", "pending", "reactive", "nonreactive", "non-reactive", "intact", "unknown"),
        *("grade", "score", "stage", "level", "value", "titer", "ratio", "index", "mm", "cm"),
    }
)
# A hedge in the rest of a clause: the clause is not cut before it.
_HEDGE = re.compile(
    r"\b(?:cannot|can\s+not|not\s+(?:be\s+)?(?:excluded|ruled\s+out)|versus|vs\b|or|possibl\w*|probabl\w*|"
    r"likely|may|might|could|suggest\w*|suspicious|concerning|worrisome|question\w*|differential|"
    r"consider\w*|favou?r\w*|presum\w*|uncertain|indeterminate|equivocal)\b",
    re.I,
)
# A hedge word that a diagnosis's own text keeps ("Hyperinflation suggestive of emphysema").
_CLAUSE_START = re.compile(r"\s*(?:which|that|with|without|and|but|likely|probably|not|no|now|new)\b", re.I)
_HEDGE_CUE = re.compile(
    r"\b(?:or|cannot|can\s+not|not\s+(?:be\s+)?excluded|versus|vs\b|possibl\w*|probabl\w*|likely|may|might|"
    r"could|suggest\w*|suspicious|concerning|worrisome|questionable|presum\w*|equivocal)\b",
    re.I,
)
_DIAGNOSIS_CUT = re.compile(
    r",\s|;\s|\s[-\u2013\u2014]\s|\s(?:which|that|with|without|and\s+(?:no|the))\s|\s\("
)
_NO_ACUTE = re.compile(
    r"\b(?:no|negative\s+for|without)\s+(?:evidence\s+of\s+)?(?:\w+\s+)?(?:acute|active)\b"
    r"|\bnegative\s+(?:chest|study|exam\w*)\b|\bnormal\s+(?:chest|study|exam\w*|radiograph)\b",
    re.I,
)

_DEFAULT_POSITIVE = frozenset(
    {
        SectionKind.FINDINGS,
        SectionKind.IMPRESSION,
        SectionKind.DIAGNOSIS,
        SectionKind.ASSESSMENT,
        SectionKind.ASSESSMENT_PLAN,
    }
)
_FINDING_SECTIONS = frozenset({SectionKind.FINDINGS, SectionKind.IMPRESSION})
_SECONDARY_FINDING_SECTIONS = frozenset({SectionKind.RESULTS, SectionKind.OTHER, SectionKind.PREAMBLE})
_DIAGNOSIS_SECTIONS = frozenset(
    {SectionKind.IMPRESSION, SectionKind.DIAGNOSIS, SectionKind.ASSESSMENT, SectionKind.ASSESSMENT_PLAN}
)
_NO_FOLLOW_UP_SECTIONS = frozenset(
    {SectionKind.HISTORY, SectionKind.ALLERGIES, SectionKind.TECHNIQUE, SectionKind.ADMIN}
)
_NO_MEDICATION_SECTIONS = frozenset(
    {SectionKind.HISTORY, SectionKind.ALLERGIES, SectionKind.TECHNIQUE, SectionKind.ADMIN}
)
_NO_FINDING_SECTIONS = frozenset(
    {
        SectionKind.HISTORY,
        SectionKind.TECHNIQUE,
        SectionKind.ALLERGIES,
        SectionKind.ADMIN,
        SectionKind.MEDICATIONS,
        SectionKind.FOLLOW_UP,
        SectionKind.PLAN,
    }
)
# Signature and dictation lines at the end of a section are not clinical statements.
_ADMIN_LINE = re.compile(
    r"\b(?:dictated|transcribed|electronically\s+signed|signed\s+by|reviewed\s+by|read\s+by|"
    r"interpreted\s+by|attending\s+(?:physician|radiologist)|report\s+(?:by|generated))\b",
    re.I,
)
# A clause that starts like this continues the one before the comma.
_CONTINUATION = re.compile(
    r"\s*(?:and\s+)?(?:which|that|could|may|might|likely|most\s+likely|probably|possibly|perhaps|"
    r"suggest\w*|consistent|compatible|concerning|suspicious|worrisome|represent\w*|reflect\w*|"
    r"favou?r\w*|versus|vs\b|or|cannot|can\s+not|not\s+(?:be\s+)?excluded|question\w*|possibl\w*|"
    r"presum\w*|felt\s+to|thought\s+to)\b",
    re.I,
)
_ALNUM = re.compile(r"[^\W_]")
_CLAUSE_SPLIT = re.compile(r"[,;:]|\s[-\u2013\u2014]\s|\b(?:but|however|although|though|whereas|yet)\b", re.I)


def _content_words(text: str) -> list[str]:
    words = (word.lower().strip("'-/") for word in _WORD.findall(text))
    return [word for word in words if word and word not in _STOPWORDS and set(word) != {"x"}]


def _label(fragment: str, needs_lexicon: bool, default_positive: bool) -> Label:
    """Label one non-negated clause.

    ``needs_lexicon`` is set when the clause shares its sentence with a negation or a normal
    predicate: "Heart size, mediastinum, and lungs are normal" must not yield "Heart size".
    """
    if _STRONG_ABNORMAL.search(fragment):
        return "positive"
    normal = _NORMAL.search(fragment) is not None
    if _WEAK_ABNORMAL.search(fragment) and not normal:
        return "positive"  # "stable enlargement of the cardiac silhouette", "elevated right hemidiaphragm"
    normal = normal or _TEMPORAL.search(fragment) is not None
    if needs_lexicon or normal or _TECHNIQUE.search(fragment):
        return "normal" if normal else "neutral"
    words = len(_content_words(fragment))
    if default_positive and (words >= 2 or (words == 1 and any(char.isdigit() for char in fragment))):
        return "positive"  # "DISH of the thoracic spine", "grade 2"
    return "neutral"


def _clauses(text: str, sentence: Sentence) -> list[_Clause]:
    """Non-negated clauses of a sentence, labelled, with absolute offsets."""
    body = text[sentence.start : sentence.end]
    scopes = _scopes(body)
    negated = scopes.negated
    negated_ends = [end for _, end in negated]
    default_positive = sentence.section in _DEFAULT_POSITIVE
    kept_parts: list[str] = []
    cursor = 0
    for span_start, span_end in negated:
        kept_parts.append(body[cursor:span_start])
        cursor = span_end
    kept_parts.append(body[cursor:])
    kept = " ".join(kept_parts)
    normal_sentence = _NORMAL.search(kept) is not None or _TEMPORAL.search(kept) is not None
    pieces: list[tuple[int, int]] = []
    position = 0
    for separator in _CLAUSE_SPLIT.finditer(body):
        if separator.group() == ":" and len(body[position : separator.start()].split()) <= 3:
            continue  # a short label stays with its clause: "HEART: Mildly enlarged"
        if any(start < separator.start() and separator.end() < end for start, end in scopes.uncertain):
            continue  # a hedge holds the clause together: "opacity, pneumonia cannot be excluded"
        if _CONTINUATION.match(body, separator.end()):
            continue  # "opacities, could represent scarring or infiltrate"
        pieces.append((position, separator.start()))
        position = separator.end()
    pieces.append((position, len(body)))

    clauses: list[_Clause] = []
    for piece_start, piece_end in pieces:
        touches_negation = _overlaps(piece_start, piece_end, negated)
        # The parts of the piece outside every negated range.
        runs: list[tuple[int, int]] = []
        cursor = piece_start
        index = bisect.bisect_right(negated_ends, piece_start)  # first span ending after the piece starts
        while index < len(negated) and negated[index][0] < piece_end:
            span_start, span_end = negated[index]
            if span_start > cursor:
                runs.append((cursor, span_start))
            cursor = max(cursor, span_end)
            index += 1
        if cursor < piece_end:
            runs.append((cursor, piece_end))
        for run_start, run_end in runs:
            start, end = _trim(body, run_start, run_end)
            start, end = _strip_edges(body, start, end)
            if start >= end:
                continue
            fragment = body[start:end]
            # A recommendation is follow-up, not a finding ("CT may be helpful to characterize").
            label: Label = (
                "neutral"
                if _FOLLOW_UP_CUE.search(fragment)
                else _label(fragment, touches_negation or normal_sentence, default_positive)
            )
            uncertain = any(
                _ALNUM.search(body, max(start, u_start), min(end, u_end)) is not None
                for u_start, u_end in scopes.uncertain
                if u_start < end and start < u_end
            )
            clauses.append(_Clause(sentence.start + start, sentence.start + end, label, uncertain))
    return clauses


_LEADING_FILLER = re.compile(r"^(?:and|or|but|with|also|then|however|specifically|otherwise)\b[\s,]*", re.I)


_TRAILING_FILLER = re.compile(
    r"[\s,]*\b(?:and|or|but|with|which|otherwise|also|then|is|are|was|were|be|been|has|have)$", re.I
)


def _strip_edges(body: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading and trailing conjunctions and punctuation from a clause span."""
    while True:
        match = _LEADING_FILLER.match(body, start, end)
        if match is None or match.end() == start:
            break
        start = match.end()
    while True:
        while end > start and body[end - 1] in ".,;:-\u2013\u2014 \t\n":
            end -= 1
        trailing = _TRAILING_FILLER.search(body, start, end)
        if trailing is None or trailing.start() == start:
            break
        end = trailing.start()
    while start < end and body[start] in ".,;:)-\u2013\u2014 \t\n":
        start += 1
    return start, end


def _positive_spans(clauses: list[_Clause]) -> list[tuple[int, int, bool]]:
    """Merge runs of consecutive positive clauses into ``(start, end, uncertain)`` spans (a normal
    clause breaks a run); a span is uncertain when one of its clauses is hedged."""
    spans: list[tuple[int, int, bool]] = []
    previous_positive = False
    for clause in clauses:
        if clause.label == "positive":
            if previous_positive:
                spans[-1] = (spans[-1][0], clause.end, spans[-1][2] or clause.uncertain)
            else:
                spans.append((clause.start, clause.end, clause.uncertain))
        previous_positive = clause.label == "positive"
    return spans


# --------------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------------
_FILLER_PREFIX = re.compile(
    r"^(?:there\s+(?:is|are|has\s+been|have\s+been)\s+|again\s+(?:seen|noted)\s+(?:is|are)\s+|"
    r"redemonstration\s+of\s+(?:the\s+)?|(?:also\s+|again\s+)?(?:noted|seen)\s+(?:is|are)\s+)",
    re.I,
)


_FILLER_SUFFIX = re.compile(
    r"\s+(?:is|are)\s+(?:also\s+|again\s+)?(?:noted|seen|present|demonstrated|identified|appreciated)$", re.I
)


_JOINED_ANAPHOR = re.compile(r"\.\s+(This|These|It|They|Which)\b")


def _clean(fragment: str) -> str:
    """Collapse whitespace, drop filler openings, capitalize; the result is display text."""
    text = " ".join(fragment.split())
    text = _JOINED_ANAPHOR.sub(lambda match: "; " + match.group(1).lower(), text)
    text = _FILLER_PREFIX.sub("", text).strip(" .,;:")
    text = _FILLER_SUFFIX.sub("", text).strip(" .,;:") or text
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text[:_MAX_FIELD_CHARS]


def _lower_first(text: str) -> str:
    """Lower-case a leading capital for use inside a sentence, leaving acronyms ("CT", "COPD") alone."""
    first = text.split(" ", 1)[0]
    if first in ("A", "An", "The") or (len(first) > 1 and first[0].isupper() and first[1:].islower()):
        return text[0].lower() + text[1:]
    return text


def _tokens(text: str) -> set[str]:
    return {word.rstrip("s") for word in _content_words(text) if len(word) > 2}


def _similar_tokens(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return False
    overlap = len(a & b)
    return overlap / len(a | b) >= 0.5 or overlap / min(len(a), len(b)) >= 0.8


@dataclass(slots=True)
class _Collector:
    """Accumulates items, merging near-duplicates (their quotes become extra evidence)."""

    items: list[Item]
    # lower-cased text, tokens, abnormality terms
    _keys: list[tuple[str, set[str], set[str]]] = field(default_factory=list)

    def add(self, text: str, quote: str, merge_similar: bool = True, uncertain: bool | None = None) -> None:
        """Add an item; ``uncertain`` (None: not stated) is kept as the item's certainty."""
        if not text or not quote.strip():
            return
        quote = quote[:_MAX_FIELD_CHARS]
        lowered, tokens = text.lower(), _tokens(text)
        # Similar wording merges only statements about the same abnormality: "calcified granuloma in the
        # right upper lobe" and "right upper lobe consolidation" share a place, not a finding.
        terms = {match.group().lower()[:6] for match in _STRONG_ABNORMAL.finditer(text)}
        for item, (item_lowered, item_tokens, item_terms) in zip(self.items, self._keys, strict=True):
            same_terms = item_terms == terms or bool(item_terms & terms)
            if item_lowered == lowered or (
                merge_similar and same_terms and _similar_tokens(item_tokens, tokens)
            ):
                if quote not in item["evidence"] and len(item["evidence"]) < _MAX_EVIDENCE:
                    item["evidence"].append(quote)
                    if uncertain is False and "certainty" in item:
                        item["certainty"] = "definite"  # stated plainly somewhere
                return
        if len(self.items) < _MAX_ITEMS:
            item = Item(text=text, evidence=[quote])
            if uncertain is not None:
                item["certainty"] = "uncertain" if uncertain else "definite"
            self.items.append(item)
            self._keys.append((lowered, tokens, terms))


def _has_follow_up_cue(fragment: str) -> bool:
    """A follow-up cue outside every negation ("no follow-up needed" is not a follow-up); a sentence
    that gives the reason for the visit ("Follow-up of hypertension.") needs another cue."""
    negated = negated_spans(fragment)
    reason = _VISIT_REASON.match(fragment)
    if reason is not None:
        negated = [*negated, (0, reason.end())]
    return any(not _overlaps(cue.start(), cue.end(), negated) for cue in _FOLLOW_UP_CUE.finditer(fragment))


def _split(body: str, separators: re.Pattern[str]) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    position = 0
    for separator in separators.finditer(body):
        pieces.append((position, separator.start()))
        position = separator.end()
    pieces.append((position, len(body)))
    return pieces


_LIST_SEPARATOR = re.compile(r";|,|\band\b")
_PLAN_SEPARATOR = re.compile(r"[;,]|\s[-\u2013\u2014]\s")
_DRUG_SEPARATOR = re.compile(r"[;,]|\s[-\u2013\u2014]\s|\band\b")


def _short_diagnosis(fragment: str) -> str:
    """The diagnosis a clause states, without its lead-in ("consistent with") and without trailing
    detail ("..., which is stable"); a hedge is never cut off ("..., pneumonia cannot be excluded",
    "atelectasis versus pneumonia", "scarring or infiltrate"), and nothing is cut mid-phrase."""
    text = " ".join(fragment.split())
    if ":" in text and text.rsplit(":", 1)[1].strip():
        text = text.rsplit(":", 1)[1]
    cue = _DIAGNOSIS_CUE.search(text)
    if cue is not None and text[cue.end() :].strip() and not _HEDGE.search(text, cue.end()):
        text = text[cue.end() :]
    cut = _DIAGNOSIS_CUT.search(text)
    before = _content_words(text[: cut.start()]) if cut is not None else []
    if (
        cut is not None
        and cut.group().startswith(",")
        and len(before) < 2
        and not _CLAUSE_START.match(text, cut.end())
    ):
        cut = None  # a list of adjectives: "Inflamed, non-perforated appendix"
    if cut is not None and before and not _HEDGE.search(text, cut.start()):
        text = text[: cut.start()]
    return _clean(text)


def _is_diagnosis(text: str) -> bool:
    """Whether a short diagnosis names something: not a bare result ("Positive", "Equivocal"), a
    number or percentage ("18 percent") or a side ("Left")."""
    words = [word for word in _content_words(text) if word not in _NOT_A_DIAGNOSIS]
    return bool(words)


def _is_medication_text(fragment: str, in_medication_section: bool) -> bool:
    if _NO_MEDICATIONS.match(fragment) or not any(char.isalpha() for char in fragment):
        return False
    if in_medication_section:
        return True
    if _STRONG_DOSE.search(fragment):
        return True
    return bool(_DOSE.search(fragment) and _FREQUENCY.search(fragment))


def _medication_pieces(body: str, in_section: bool) -> list[tuple[int, int]]:
    """Where the drugs are in a line.

    In a medication list a line is one drug, unless it names several doses ("aspirin 81 mg daily,
    metoprolol 25 mg BID"); then a piece without a dose belongs to the drug before it. Elsewhere only
    the clauses that carry a dose are medications ("treated with ceftriaxone 1 g IV daily").
    """
    if in_section:
        if len(_DOSE.findall(body)) < 2:
            return [(0, len(body))]
        merged: list[tuple[int, int]] = []
        for start, end in _split(body, _LIST_SEPARATOR):
            if merged and not _DOSE.search(body[start:end]):
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged
    return [(start, end) for start, end in _split(body, _DRUG_SEPARATOR) if _DOSE.search(body[start:end])]


def _medications(text: str, sentences: list[Sentence]) -> tuple[list[Item], list[Item]]:
    """All medications, and those from a medication list (what the summary names first)."""
    collector = _Collector([])
    listed: list[Item] = []
    for sentence in sentences:
        if sentence.section in _NO_MEDICATION_SECTIONS:
            continue
        in_section = sentence.section is SectionKind.MEDICATIONS
        body = text[sentence.start : sentence.end]
        if not in_section and not _DOSE.search(body):
            continue
        negated = negated_spans(body)
        for piece_start, piece_end in _medication_pieces(body, in_section):
            start, end = _strip_edges(body, *_trim(body, piece_start, piece_end))
            fragment = body[start:end]
            if not fragment or not _is_medication_text(fragment, in_section):
                continue
            dose = _DOSE.search(body, start, end)
            probe = dose.span() if dose is not None else (start, start + 1)
            if _overlaps(*probe, negated):
                continue  # "not on aspirin 81 mg daily", "no anticoagulation"
            before = len(collector.items)
            collector.add(_clean(fragment), text[sentence.start + start : sentence.start + end], False)
            if in_section and len(collector.items) > before:
                listed.append(collector.items[-1])
    return collector.items, listed


def _follow_up(text: str, sentences: list[Sentence]) -> list[Item]:
    collector = _Collector([])
    for sentence in sentences:
        if sentence.section in _NO_FOLLOW_UP_SECTIONS:
            continue
        body = text[sentence.start : sentence.end]
        if sentence.section in (SectionKind.PLAN, SectionKind.ASSESSMENT_PLAN):
            # A plan line mixes problems, drugs and follow-up: keep only the follow-up clauses.
            pieces = [
                piece for piece in _split(body, _PLAN_SEPARATOR) if _has_follow_up_cue(body[slice(*piece)])
            ]
        elif sentence.section is SectionKind.FOLLOW_UP:
            pieces = [] if _NO_MEDICATIONS.match(body) else [(0, len(body))]
        else:
            pieces = [(0, len(body))] if _has_follow_up_cue(body) else []
        for piece_start, piece_end in pieces:
            start, end = _strip_edges(body, *_trim(body, piece_start, piece_end))
            if start < end:
                collector.add(_clean(body[start:end]), text[sentence.start + start : sentence.start + end])
    return collector.items


@dataclass(slots=True)
class _Analysis:
    key_findings: list[Item]
    incidental_only: bool  # the key findings are chronic or incidental findings only
    diagnoses: list[Item]
    impression_positive: list[str]
    impression_negative: list[str]
    has_impression: bool
    has_findings: bool


# A sentence that interprets the one before it: "This may represent atelectasis."
_ANAPHOR = re.compile(
    r"(?:this|these|it|they|which|the\s+latter|(?:this|these|the)\s+(?:findings?|appearances?|"
    r"abnormalit(?:y|ies)|opacit(?:y|ies)|densit(?:y|ies)|lesions?|nodules?|changes?))\s+(?:\w+\s+)?"
    r"(?:may|might|could|likely|probably|possibly|most\s+likely|represents?|reflects?|suggests?|"
    r"favou?rs?|raises?|(?:is|are)\s+(?:likely|probably|possibly|most|consistent|compatible|suggestive|"
    r"concerning|suspicious|worrisome|favou?red|thought|felt|presumed|due|related|secondary|"
    r"in\s+keeping|of\s+uncertain))\b",
    re.I,
)


def _join_anaphora(text: str, sentences: list[Sentence]) -> list[Sentence]:
    """Join each interpreting sentence ("This may represent atelectasis.") to the sentence before it,
    when both are in one section and only whitespace lies between them; a recommendation ("This could
    be evaluated with CT.") stays apart (it is follow-up, not a finding)."""
    joined: list[Sentence] = []
    for sentence in sentences:
        previous = joined[-1] if joined else None
        body = text[sentence.start : sentence.end]
        if (
            previous is not None
            and previous.section is sentence.section
            and not text[previous.end : sentence.start].strip()
            and _ANAPHOR.match(body)
            and not _FOLLOW_UP_CUE.search(body)
        ):
            joined[-1] = Sentence(previous.start, sentence.end, previous.section)
        else:
            joined.append(sentence)
    return joined


# A statement that points elsewhere: "Chronic findings as discussed below."
_REFERENCE = re.compile(
    r"\b(?:as\s+(?:discussed|described|detailed|noted|above|below)|see\s+(?:above|below))\b", re.I
)


def _is_heading(fragment: str) -> bool:
    """A heading or label line, or a pointer to another part of the report, not a statement:
    "SURGICAL PATHOLOGY REPORT", "Left breast, biopsy:", "Chronic findings as discussed below"."""
    stripped = fragment.strip()
    if _REFERENCE.search(stripped) and not _disease_term(stripped):
        return True
    return stripped.endswith(":") or (_is_title(stripped) and not _disease_term(stripped))


# --------------------------------------------------------------------------------------------------
# Interpretation: what the radiologist makes of an appearance is what an impression states
# --------------------------------------------------------------------------------------------------
# Words that describe how something looks on the image, not what it is.
_APPEARANCE = re.compile(
    r"\b(?:opacit\w*|opacification|densit\w*|air\s*space\s+(?:disease|process|opacit\w*)|airspace|"
    r"infiltrat\w*|interstitial|markings?|lucenc\w*|blunt\w*|nodular\w*|shadows?|thicken\w*|prominen\w*|"
    r"streak\w*|band\w*|plate-?like|linear|changes?|abnormalit\w*|deformit\w*|widen\w*|elevat\w*|"
    r"crowding|haz[ey]\w*|appearance|process|disease|findings?|irregular\w*)\b",
    re.I,
)
# "<appearance> consistent with / likely / may represent <reading>". A de-identification mask right
# before the reading ("opacity, XXXX atelectasis", "most XXXX representing scarring") hides a word
# that is not known, so it counts as a hedge (the conservative reading).
_MASKED = r"(?P<mask>(?:most\s+)?(?:XXXX\s+)+)"
_INTERPRETATION = re.compile(
    r"(?:,\s*|\s+)(?:(?:which|that)\s+)?(?:(?:is|are|was|were)\s+)?(?:most\s+)?"
    rf"(?:{_MASKED}(?:(?:is|are)\s+)?)?"
    r"(?:(?P<definite>consistent\s+with|compatible\s+with|in\s+keeping\s+with|diagnostic\s+of|"
    r"characteristic\s+of|typical\s+of|representing|represents?|reflecting|reflects?|due\s+to|"
    r"secondary\s+to|related\s+to|attributable\s+to|attributed\s+to)"
    r"|(?P<hedged>(?:likely|probably|possibly|presumably|presumed)(?:\s+(?:representing|represents?|"
    r"reflect(?:s|ing)?|due\s+to|secondary\s+to|related\s+to|to\s+(?:be|represent)))?|"
    r"(?:may|might|could)\s+(?:(?:also|possibly)\s+)?(?:represent|reflect|indicate|"
    r"be(?:\s+(?:due|secondary|related)\s+to)?)|suggestive\s+of|suggesting|suggests?|worrisome\s+for|"
    r"concerning\s+for|suspicious\s+for|(?:appears?|appearing|thought|felt|believed)\s+to\s+(?:represent|"
    r"reflect|be(?:\s+(?:due|secondary|related)\s+to)?)))\s+"
    r"|,\s*(?P<bare_mask>(?:most\s+)?(?:XXXX\s+)+)",
    re.I,
)
# "Apparent cardiomegaly ... accentuated by low lung volumes": how it looks, not what it is.
_APPARENT = re.compile(r"\bapparent(?:ly)?\b", re.I)
_POSSIBLE_CUE = re.compile(r"(?:may|might|could|suggest|worrisome|concerning|suspicious)", re.I)
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.I)
# Where a reading ends: at a comma that does not start an alternative, or at its clinical context.
_READING_END = re.compile(r",\s*(?!or\b)|;|\s(?:given|in\s+(?:the|a)\s+(?:appropriate\s+)?clinical)\b", re.I)
# Readings that explain an appearance away: a scar, a granuloma, an old fracture, or something that
# is not in the lungs at all (overlying soft tissue, a nipple, epicardial fat, an artifact).
_BENIGN_READING = re.compile(
    r"\b(?:scar\w*|granulom\w*|calcifi\w*|postoperative|post-?surgical|surgical|epicardial\s+fat|"
    r"fat(?:\s+pads?)?|soft\s+tissues?|skin\s*folds?|overlying|overlapping|superimpos\w*|artifact\w*|"
    r"nipples?|breast\s+tissue|vessels?|vascular\s+shadows?|costochondral|(?:bone|osseous)\s+"
    r"(?:structures|silhouettes?|islands?)|(?:old|healed|remote)\s+(?:\w+\s+){0,2}?fractur\w*)\b",
    re.I,
)
# Location words: "left lower lobe", "right lung base", "bibasilar".
_LOCATION_RUN = re.compile(
    r"\b(?:(?:left|right|bilateral|bibasilar|bibasal|basilar|basal|apical|perihilar|retrocardiac|"
    r"infrahilar|suprahilar|hilar|lingular|lingula|upper|middle|lower|mid|midlung|lung|lungs|lobes?|"
    r"bases?|apex|apices|costophrenic|sulcus|sulci|angles?|hemithorax|zones?|subsegmental|segmental)"
    r"\b[\s-]*)+",
    re.I,
)
_SIDE_OR_REGION = re.compile(
    r"\b(?:left|right|bilateral|bibasilar|bibasal|basilar|apical|perihilar|retrocardiac|lingula\w*|"
    r"midlung|infrahilar|suprahilar)\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What a finding's appearance is read as: ``text`` (hedged when ``uncertain``), and whether the
    reading explains the appearance away (``benign``: scarring, a granuloma, overlying soft tissue)."""

    text: str
    uncertain: bool
    benign: bool


def _location(description: str) -> str:
    """The longest run of location words of a description that names a side or region."""
    runs = [match.group().strip(" -") for match in _LOCATION_RUN.finditer(description)]
    runs = [run for run in runs if _SIDE_OR_REGION.search(run)]
    return max(runs, key=len) if runs else ""


def _interpret(fragment: str, uncertain: bool) -> _Reading | None:
    """The reading of an appearance, as an impression states it: "Left lower lobe airspace disease,
    consistent with pneumonia" -> "Left lower lobe pneumonia"; "opacity, which may represent
    atelectasis" -> "Possible ... atelectasis" (uncertain: the hedge is kept); "nodular opacities
    consistent with chronic granulomatous disease" -> benign. None when the fragment is not an
    appearance with a reading, or when its description names an abnormality of its own ("edema and
    cardiomegaly, consistent with heart failure" keeps every finding)."""
    text = " ".join(fragment.split())
    for cue in _INTERPRETATION.finditer(text):
        description = text[: cue.start()]
        reading = text[cue.end() :]
        end = _READING_END.search(reading)
        reading = reading[: end.start()] if end else reading
        reading = _ARTICLE.sub("", reading.strip(" .,;:"))
        if not description.strip() or not _APPEARANCE.search(description):
            continue
        if _STRONG_ABNORMAL.search(_APPEARANCE.sub(" ", description)):
            return None  # the description is a finding of its own: never replace it
        explained = _BENIGN_READING.sub(" ", reading)
        benign = bool(_BENIGN_READING.search(reading)) and not _STRONG_ABNORMAL.search(explained)
        if not benign and not _STRONG_ABNORMAL.search(reading):
            continue  # "opacity related to the patient's position": not a reading we can state
        # A masked connector is an unknown word: "most XXXX" is "most likely", a bare mask is not known
        # to hedge, so the reading keeps the certainty of the statement.
        hedged = bool(cue.group("hedged") or re.search(r"\bmost\s+XXXX", cue.group(), re.I))
        where = _location(description)
        stated = reading
        if where and not _SIDE_OR_REGION.search(reading):
            stated = f"{where} {_lower_first(reading)}"
        if hedged and not _HEDGE_CUE.search(stated):
            # The report's own degree of doubt: "may represent" is possible, "likely" probable.
            possible = _POSSIBLE_CUE.match(cue.group("hedged") or "")
            stated = f"{'possible' if possible else 'probable'} {_lower_first(stated)}"
        return _Reading(_clean(stated), uncertain or hedged, benign)
    return None


# Lines, tubes and cardiac devices: where they lie matters, so they are key findings.
_LINE_OR_TUBE = re.compile(
    r"\b(?:catheters?|tubes?|picc|(?:central|venous|arterial|picc|midline|port)\s+lines?|pacemakers?|"
    r"pacers?|aicd|icd|defibrillators?|leads|drains?|tip)\b",
    re.I,
)


def _key_findings(found: list[Item], benign: list[Item]) -> tuple[list[Item], bool]:
    """The key findings: what an impression would state. Chronic or incidental findings (a granuloma,
    degenerative change, an old fracture, surgical clips) and appearances read as benign are key only
    when nothing else is found; returns the findings and whether they are only those."""

    def named(item: Item) -> bool:
        return _significance(item["text"]) < _INCIDENTAL_RANK - 1 or bool(_LINE_OR_TUBE.search(item["text"]))

    if any(named(item) for item in found):
        return [
            item for item in found if named(item) or _significance(item["text"]) < _INCIDENTAL_RANK
        ], False
    incidental_only = all(_significance(item["text"]) == _INCIDENTAL_RANK for item in found)
    return [*found, *benign], incidental_only and bool(found or benign)


def _analyse(text: str, sections: list[Section], sentences: list[Sentence]) -> _Analysis:
    kinds = {section.kind for section in sections}
    has_primary = bool(kinds & _FINDING_SECTIONS)
    primary = _Collector([])
    secondary = _Collector([])
    from_diagnoses = _Collector([])
    benign = _Collector([])  # appearances read as benign or chronic: never key findings
    diagnoses = _Collector([])
    impression_positive: list[str] = []
    impression_negative: list[str] = []
    for sentence in _join_anaphora(text, sentences):
        if sentence.section in _NO_FINDING_SECTIONS:
            continue
        body = text[sentence.start : sentence.end]
        if _ADMIN_LINE.search(body) or _is_heading(body):
            continue
        clauses = _clauses(text, sentence)
        positive_spans = _positive_spans(clauses)
        if sentence.section is SectionKind.IMPRESSION:
            if positive_spans:
                # The summary quotes the whole impression sentence, pertinent negatives included
                # ("Cardiomegaly without superimposed acute disease").
                impression_positive.append(_clean(body))
            elif _NO_ACUTE.search(body):
                impression_negative.append(_clean(body))
        if sentence.section is SectionKind.ASSESSMENT_PLAN:
            # "1. COPD exacerbation - continue prednisone": the problem is the first clause.
            if _PLAN_VERB.match(body) or not clauses:
                continue
            clauses = clauses[:1]
            positive_spans = _positive_spans(clauses)
        for start, end, uncertain in positive_spans:
            quote = text[start:end]
            finding = _clean(quote)
            if not finding:
                continue
            if sentence.section in _FINDING_SECTIONS:
                uncertain = uncertain or bool(_APPARENT.search(quote))
                reading = _interpret(quote, uncertain)
                if reading is None:
                    primary.add(finding, quote, uncertain=uncertain)
                elif reading.benign:
                    benign.add(reading.text, quote, uncertain=reading.uncertain)
                else:
                    primary.add(reading.text, quote, uncertain=reading.uncertain)
            elif sentence.section in _SECONDARY_FINDING_SECTIONS and _STRONG_ABNORMAL.search(quote):
                secondary.add(finding, quote, uncertain=uncertain)
            elif sentence.section in _DIAGNOSIS_SECTIONS:
                from_diagnoses.add(finding, quote, uncertain=uncertain)
            if sentence.section in _DIAGNOSIS_SECTIONS:
                device_only = bool(_DEVICE_OR_PROCEDURE.search(quote)) and not _disease_term(quote)
                diagnosis = _short_diagnosis(quote)
                if not device_only and _is_diagnosis(diagnosis):
                    diagnoses.add(diagnosis, quote, uncertain=uncertain or bool(_HEDGE_CUE.search(diagnosis)))
    for collector in (secondary, *(() if has_primary else (from_diagnoses,))):
        for item in collector.items:
            for quote in item["evidence"]:
                primary.add(item["text"], quote, uncertain=item.get("certainty") == "uncertain")
    key_findings, incidental_only = _key_findings(primary.items, benign.items)
    return _Analysis(
        key_findings=key_findings,
        incidental_only=incidental_only,
        diagnoses=diagnoses.items,
        impression_positive=impression_positive,
        impression_negative=impression_negative,
        has_impression=SectionKind.IMPRESSION in kinds,
        has_findings=SectionKind.FINDINGS in kinds,
    )


def _is_title(fragment: str) -> bool:
    return fragment.isupper() and len(fragment.split()) <= 6 and not fragment.rstrip().endswith(".")


_DRUG_NAME_NOISE = frozenset(
    {
        "continue",
        "continued",
        "start",
        "started",
        "resume",
        "take",
        "takes",
        "taking",
        "with",
        "on",
        "was",
        "were",
        "is",
        "he",
        "she",
        "they",
        "the",
        "and",
        "treated",
        "given",
        "received",
        "receive",
        "of",
        "to",
        "then",
    }
)


def _drug_name(item: Item) -> str:
    """The one or two words before the dose: "Metoprolol succinate 25 mg daily" -> "metoprolol succinate"."""
    text = item["text"]
    dose = _DOSE.search(text)
    words = (text[: dose.start()] if dose else text).split()[-2:]
    name = " ".join(word for word in words if word.lower() not in _DRUG_NAME_NOISE).strip(" ,;:")
    return name.lower() if name else _lower_first(text)


def _disease_term(fragment: str) -> bool:
    for match in _STRONG_ABNORMAL.finditer(fragment):
        if not _DEVICE_OR_PROCEDURE.fullmatch(match.group(0)):
            return True
    return False


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .;,:")
    return f"{text}." if text else ""


def _join(items: list[str], limit: int = 3) -> str:
    chosen = [_lower_first(item) for item in items[:limit]]
    return "; ".join(chosen)


# Significance, most significant first: acute or dangerous, then active disease, then other named
# abnormalities, then chronic changes; what none of them names comes after those, and chronic or
# incidental findings (granulomas, degenerative change, devices, an old fracture) last.
_SIGNIFICANCE: tuple[re.Pattern[str], ...] = tuple(
    re.compile(rf"\b(?:{terms})", re.I)
    for terms in (
        r"pneumothora|tension|free\s+air|pneumoperitoneum|pneumomediastin|mass(?:es)?\b|malignan|carcinoma|"
        r"metasta|neoplas|tumou?r|fractur|embol|hemorrhag|haemorrhag|dissect|aneurysm|abscess|widen|"
        r"perforat|obstruct|infarct|isch[ae]mi",
        r"consolidat|pneumoni|edema|congest|engorge|cephali|effusion|infiltrat|airspace|air\s+space|cavit|"
        r"inflam|\w+itis\b|sepsis|exacerbat|failure",
        r"opacit|opacification|atelecta|collapse|nodul|lesion|cardiomegal|enlarg|adenopath|interstitial|"
        r"densit|thicken|blunt",
        r"emphysem|copd|bull(?:ae|ous)|blebs?\b|hyperinfla|hyperexpan|hyperlucen|bronchiect|"
        r"low\s+(?:lung\s+)?volume|hypoinfla|"
        r"volume\s+loss|elevat|abnormal",
    )
)
_INCIDENTAL = re.compile(
    r"\b(?:granulom\w*|calcifi\w*|degenerat\w*|spondylo\w*|osteophyt\w*|arthriti\w*|arthros\w*|"
    r"enthesophyt\w*|dish|\w*scolio\w*|\w*kypho\w*|curvature|tortu\w*|ectatic|ectasia|unfold\w*|"
    r"atheroscl\w*|atheromatous|osteopen\w*|osteopor\w*|postoperative|post-operative|postsurgical|"
    r"post-surgical|surgical|status\s+post|s/p|sternotom\w*|\w+ectomy|clips?|sutures?|hardware|fusion|"
    r"catheters?|tubes?|picc|lines?|pacemakers?|pacers?|aicd|icd|leads?|wires?|stents?|prosthe\w*|ports?|"
    r"eventration|hernia\w*|nipple|scar\w*|fibro\w*|fat|soft\s+tissues?|skin\s*folds?|artifact\w*)\b",
    re.I,
)
# A significant word qualified as old or calcified ("old rib fracture", "calcified nodule").
_OLD_FINDING = re.compile(
    r"\b(?:old|healed|healing|remote|chronic(?:[- ]appearing)?|calcified|stable\s+calcified)\s+"
    r"(?:[\w-]+\s+){0,3}?(?:fractur\w*|nodul\w*|deformit\w*|lesions?|densit\w*|opacit\w*|"
    r"(?:interstitial\s+)?markings?|interstitial\s+(?:changes|prominence|thickening)|scar\w*)",
    re.I,
)
_INCIDENTAL_RANK = len(_SIGNIFICANCE) + 1


def _significance(statement: str) -> int:
    """The significance rank of a statement: 0 (acute or dangerous, e.g. pneumothorax) to
    ``len(_SIGNIFICANCE) + 1`` (chronic or incidental only, e.g. a calcified granuloma)."""
    plain = _OLD_FINDING.sub(" calcified ", statement)
    for rank, pattern in enumerate(_SIGNIFICANCE):
        if pattern.search(plain):
            return rank
    return _INCIDENTAL_RANK if _INCIDENTAL.search(plain) else _INCIDENTAL_RANK - 1


def _ranked(statements: list[str]) -> list[str]:
    return sorted(statements, key=_significance)  # stable: report order within a rank


def _findings_sentence(findings: list[Item], incidental_only: bool) -> str:
    """Positive findings, most significant first; chronic or incidental ones said to be only that."""
    ranked = _ranked([item["text"] for item in findings])
    significant = [text for text in ranked if _significance(text) < _INCIDENTAL_RANK]
    if significant and not incidental_only:
        return _sentence("Findings include " + _join(significant))
    return _sentence("Chronic or incidental findings only: " + _join(ranked))


def _summary(analysis: _Analysis, medications: list[Item], follow_up: list[Item]) -> str:
    """One to three sentences: positive statements first, most significant first (the impression's,
    else the diagnoses, else the findings), then what the impression rules out, then follow-up.
    "No acute abnormality reported." only when nothing positive was found."""
    sentences: list[str] = []
    if analysis.impression_positive:
        room = 2 if follow_up or analysis.impression_negative else 3
        sentences.extend(_sentence(item) for item in _ranked(analysis.impression_positive)[:room])
    elif analysis.key_findings and (analysis.has_findings or analysis.has_impression):
        sentences.append(_findings_sentence(analysis.key_findings, analysis.incidental_only))
    elif analysis.diagnoses:
        ranked = _ranked([item["text"] for item in analysis.diagnoses])
        sentences.append(_sentence("Diagnoses: " + _join(ranked, 4)))
        if medications:
            names = list(dict.fromkeys(_drug_name(item) for item in medications))
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            sentences.append(_sentence("Medications: " + ", ".join(names[:3]) + more))
    elif analysis.key_findings:
        sentences.append(_findings_sentence(analysis.key_findings, analysis.incidental_only))
    if sentences and analysis.impression_negative and len(sentences) < 3:
        # What the radiologist ruled out, in the report's words, after the positives.
        sentences.append(_sentence("Impression: " + _lower_first(analysis.impression_negative[0])))
    if not sentences:
        if medications:
            names = list(dict.fromkeys(_drug_name(item) for item in medications))
            sentences.append(_sentence("Medications: " + ", ".join(names[:3])))
        else:
            sentences.append(NO_ACUTE_ABNORMALITY)
    if follow_up and len(sentences) < 3:
        sentences.append(_sentence("Follow-up: " + _lower_first(follow_up[0]["text"])))
    summary = " ".join(sentence for sentence in sentences[:3] if sentence)
    return summary[:_MAX_SUMMARY_CHARS] or NO_ACUTE_ABNORMALITY


# --------------------------------------------------------------------------------------------------
# Allergies
# --------------------------------------------------------------------------------------------------
_NO_ALLERGY = re.compile(
    r"^\W*(?:none|nk[dm]?as?|n/?a|unknown|no\s+known|denies|not\s+known)\b|^\W*no\s+(?:\w+\s+)?allerg", re.I
)
# "Penicillin - hives", "Penicillin: rash", "Penicillin (anaphylaxis)", "Penicillin causes rash".
_REACTION = re.compile(
    r"\s*(?:\(|:\s|\s[-\u2013\u2014>]+\s|-->|->|\s(?:causes?|caused|causing|results?\s+in|leads?\s+to|"
    r"with\s+reaction|reaction:?|with)\s)\s*",
    re.I,
)
_ALLERGY_SEPARATOR = re.compile(r"[;,]|\band\b(?![^()]*\))")
_INLINE_ALLERGY = re.compile(
    r"\ballergic\s+to\s+(?P<to>[A-Za-z][\w/-]*(?:\s+[A-Za-z][\w/-]*){0,2}?)(?=\s*(?:[.,;)]|$|\s+(?:and|with|"
    r"which|causing|resulting)\b))"
    r"|\b(?P<noun>[A-Za-z][\w/-]{2,})\s+allerg(?:y|ies)\b",
    re.I,
)
_NOT_A_SUBSTANCE = frozenset(
    {
        *(
            "known",
            "drug",
            "drugs",
            "food",
            "foods",
            "medication",
            "medications",
            "seasonal",
            "environmental",
        ),
        *("multiple", "other", "any", "no", "the", "his", "her", "with", "has", "have", "of", "and", "or"),
        *("allergies", "allergy", "list", "reviewed", "nkda", "documented", "reported", "severe", "mild"),
    }
)


def _allergy_text(piece: str) -> str:
    """ "Penicillin - hives" -> "Penicillin (hives)"; "Sulfa" -> "Sulfa"."""
    piece = " ".join(piece.split()).strip(" .,;:")
    match = _REACTION.search(piece)
    if match is None or match.start() == 0:
        return _clean(piece)
    substance = piece[: match.start()].strip(" .,;:-")
    reaction = piece[match.end() :].strip(" .,;:-()")
    if not substance:
        return _clean(piece)
    return _clean(f"{substance} ({reaction})" if reaction else substance)


def _allergies(text: str, sentences: list[Sentence]) -> list[Item]:
    """Allergies: the lines of an allergy section (one substance per comma-separated piece, with its
    reaction), and "allergic to X" / "X allergy" anywhere; "NKDA", "no known allergies" and denied
    allergies are none."""
    collector = _Collector([])
    for sentence in sentences:
        body = text[sentence.start : sentence.end]
        negated = negated_spans(body)
        if sentence.section is SectionKind.ALLERGIES:
            if _NO_ALLERGY.match(body):
                continue
            for piece_start, piece_end in _split(body, _ALLERGY_SEPARATOR):
                start, end = _strip_edges(body, *_trim(body, piece_start, piece_end))
                if start >= end or _NO_ALLERGY.match(body, start) or _overlaps(start, end, negated):
                    continue
                if not any(char.isalpha() for char in body[start:end]):
                    continue
                collector.add(
                    _allergy_text(body[start:end]), text[sentence.start + start : sentence.start + end]
                )
            continue
        for match in _INLINE_ALLERGY.finditer(body):
            group = "to" if match.group("to") else "noun"
            substance = match.group(group)
            words = substance.lower().split()
            if (
                not words
                or words[0] in _NOT_A_SUBSTANCE
                or words[-1] in _NOT_A_SUBSTANCE
                or _overlaps(match.start(group), match.end(group), negated)
            ):
                continue
            collector.add(
                _clean(substance), text[sentence.start + match.start() : sentence.start + match.end()]
            )
    return collector.items


def summarize_report(text: str) -> ModelOutput:
    """Summarize a clinical report extractively.

    Parameters
    ----------
    text:
        The report text, any size; masked tokens ("XXXX") are tolerated.

    Returns
    -------
    ModelOutput
        The summary contract with verbatim evidence quotes: every quote is ``text[i:j]`` for
        some ``i < j``, so ``text.find(quote)`` never returns -1. Lists stay within the worker's
        limits (50 items, 10 quotes per item, 2,000 characters per string).
    """
    sections = split_sections(text)
    sentences = split_sentences(text, sections)
    analysis = _analyse(text, sections, sentences)
    medications, listed_medications = _medications(text, sentences)
    follow_up = _follow_up(text, sentences)
    return ModelOutput(
        summary=_summary(analysis, listed_medications or medications, follow_up),
        key_findings=analysis.key_findings,
        diagnoses=analysis.diagnoses,
        medications=medications,
        follow_up=follow_up,
        allergies=_allergies(text, sentences),
    )


def summarize_prompt(system: str, user_text: str) -> ModelOutput:
    """Answer a summarization prompt like a well-behaved model would.

    Parameters
    ----------
    system:
        The system prompt (instructions); only its presence matters to this model.
    user_text:
        The user message. The report is taken from between its tags
        (:func:`medsum.prompting.extract_report`); a repair request (one quoting the previous reply)
        gets a fresh summary of the same report.

    Returns
    -------
    ModelOutput
        The summary of the report.
    """
    del system  # Instructions are baked into this model.
    return summarize_report(extract_report(user_text))
