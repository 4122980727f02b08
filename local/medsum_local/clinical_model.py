"""A deterministic, extractive clinical summarizer that stands in for the LLM in the offline stack.

It returns exactly what the worker asks Bedrock for (see ``medsum.models.ModelSummary``)::

    {"summary": str,
     "key_findings": [{"text": str, "evidence": [verbatim quote, ...]}],
     "diagnoses": [...], "medications": [...], "follow_up": [...]}

Every evidence quote is an exact substring of the report, because every quote is a slice of it.

How it works, in order:

1. **Sections.** Headers such as ``FINDINGS:``, ``Impression:``, ``DISCHARGE MEDICATIONS`` (own line
   or inline) split the text into typed sections; text before the first header is the preamble.
2. **Sentences.** Each section body is cut into sentences (wrapped lines are joined, enumerated
   lists and line-oriented sections are split per item). Offsets into the original text are kept.
3. **Negation** (NegEx style). Pre-triggers ("no", "without", "negative for", "free of", ...) negate
   up to the end of the sentence or a termination term ("but", "however", ";", ...), so every item
   of "no focal consolidation, pneumothorax, or pleural effusion" is negated. Post-triggers
   ("is not seen", "has resolved", ...) negate back to the start of the clause. Pseudo-triggers
   ("no change", "cannot be excluded") negate nothing.
4. **Classification.** What is left of a sentence is cut into clauses. A clause is *positive* when
   it names an abnormality (lexicon), *normal* when it only says normal / clear / unremarkable /
   stable or describes technique, and in FINDINGS / IMPRESSION / DIAGNOSIS sections any other
   contentful clause is positive too (reports state abnormal findings in words no lexicon covers).
5. **Extraction.** Positive clauses in findings-like sections become key findings; positive clauses
   in impression / assessment / diagnosis sections become (shortened) diagnoses; dose- or
   frequency-bearing lines, or lines under a medications header, become medications; sentences with
   a follow-up cue ("recommend", "follow up", "may be helpful", "repeat imaging", "return if", ...)
   or under a follow-up header become follow-up items.
6. **Summary.** One to three sentences built from the impression's positive statements, falling
   back to diagnoses or key findings, and "No acute abnormality reported." when all is negative.

All functions are pure: no I/O, no randomness, no logging.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypedDict

__all__ = [
    "NO_ACUTE_ABNORMALITY",
    "Item",
    "ModelOutput",
    "Section",
    "SectionKind",
    "Sentence",
    "extract_report",
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
_MAX_DIAGNOSIS_WORDS = 12


class Item(TypedDict):
    """One extracted item: a short statement and the verbatim quotes that support it."""

    text: str
    evidence: list[str]


class ModelOutput(TypedDict):
    """The JSON object the worker asks the model to return."""

    summary: str
    key_findings: list[Item]
    diagnoses: list[Item]
    medications: list[Item]
    follow_up: list[Item]


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
            "SUBJECTIVE",
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
    (("HISTORY", "INDICATION", "REASON", "CLINICAL", "COMPLAINT", "HPI", "PRESENTING"), SectionKind.HISTORY),
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


def _header_kind(name: str) -> SectionKind | None:
    upper = " ".join(name.upper().split())
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
# Negation
# --------------------------------------------------------------------------------------------------
_PSEUDO_NEGATION = re.compile(
    r"\b(?:no|without)\s+(?:significant\s+|interval\s+|definite\s+|substantial\s+)?"
    r"(?:change|increase|decrease|progression)\b"
    r"|\bnot\s+only\b"
    r"|\b(?:cannot|can\s+not|could\s+not|not)\s+(?:be\s+|been\s+)?(?:entirely\s+|completely\s+|totally\s+)?"
    r"(?:excluded|ruled\s+out)\b"
    r"|\bgram[- ]negative\b",
    re.I,
)
_PRE_NEGATION = re.compile(
    r"\b(?:no|not|without|negative\s+for|free\s+of|clear\s+of|absence\s+of|denies|denied|deny|never|"
    r"neither|nor|rules?\s+out|r/o|resolution\s+of|resolved(?=\s+[a-z])|interval\s+removal\s+of|"
    r"fails?\s+to\s+(?:show|demonstrate|reveal))\b",
    re.I,
)
_SEEN = (
    r"(?:seen|identified|demonstrated|visuali[sz]ed|visible|present|evident|appreciated|detected|noted|"
    r"apparent|observed|found|shown)"
)
_POST_NEGATION = re.compile(
    rf"\b(?:(?:is|are|was|were|has\s+been|have\s+been)\s+)?(?:not\s+(?:be\s+|as\s+well\s+)?(?:\w+ly\s+)?{_SEEN}"
    rf"|no\s+longer\s+(?:\w+ly\s+)?{_SEEN}"
    r"|(?:has|have)\s+(?:since\s+|now\s+|completely\s+)?resolved"
    r"|(?:has|have)\s+been\s+removed"
    r"|(?:removed|resolved|absent|excluded|unlikely|none)(?=\s*(?:[.,;:)]|$|\s+(?:in|on|since|at|with)\b)))",
    re.I,
)
# Where a negation's scope ends (forward) or a post-negation's scope begins (backward).
_TERMINATION = re.compile(
    r";|\b(?:but|however|although|though|whereas|yet|except|aside\s+from|apart\s+from|other\s+than|"
    r"nevertheless|still)\b|\bthere\s+(?:is|are)\b|,\s*(?:and\s+)?(?=(?:the|there|a|an)\b)",
    re.I,
)
_BACKWARD_BOUNDARY = re.compile(r"[,;]|\b(?:but|however|although|though|whereas|and|with)\b", re.I)


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, end)`` overlaps one of ``spans`` (sorted and non-overlapping), in O(log n)."""
    index = bisect.bisect_left(spans, (end,))  # first span starting at or after ``end``
    return index > 0 and spans[index - 1][1] > start


def negated_spans(sentence: str) -> list[tuple[int, int]]:
    """Character ranges of ``sentence`` that are in the scope of a negation.

    Parameters
    ----------
    sentence:
        One sentence.

    Returns
    -------
    list[tuple[int, int]]
        Sorted, merged ``(start, end)`` ranges relative to ``sentence``. A pre-negation scope
        includes its trigger and runs to the end of the sentence or the first termination term;
        a post-negation scope runs back from its trigger to the start of its clause.
    """
    # Positions are found once and looked up by bisection, so long sentences stay near-linear.
    pseudo = [match.span() for match in _PSEUDO_NEGATION.finditer(sentence)]
    boundary_ends = [match.end() for match in _BACKWARD_BOUNDARY.finditer(sentence)]
    terminator_starts = [match.start() for match in _TERMINATION.finditer(sentence)]
    spans: list[tuple[int, int]] = []
    post_triggers: list[tuple[int, int]] = []
    for match in _POST_NEGATION.finditer(sentence):
        if _overlaps(match.start(), match.end(), pseudo):
            continue
        post_triggers.append(match.span())
        index = bisect.bisect_right(boundary_ends, match.start()) - 1
        spans.append((boundary_ends[index] if index >= 0 else 0, match.end()))
    for match in _PRE_NEGATION.finditer(sentence):
        if _overlaps(match.start(), match.end(), pseudo) or _overlaps(
            match.start(), match.end(), post_triggers
        ):
            continue
        index = bisect.bisect_left(terminator_starts, match.end())
        spans.append(
            (match.start(), terminator_starts[index] if index < len(terminator_starts) else len(sentence))
        )
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


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
    r"pleural\s+fluid|air\s+(?:fluid|bronchogram)\w*)\b",
    re.I,
)
# Modifiers that suggest an abnormality but also occur in normal statements ("normal markings").
_WEAK_ABNORMAL = re.compile(
    r"\b(?:enlarg\w*|increas\w*|decreas\w*|prominen\w*|markings|interstitial|elevat\w*|irregular\w*|"
    r"mild\w*|moderate\w*|severe\w*|marked\w*|small|large|trace|minimal|chronic\w*|changes|disease|"
    r"suspicious|concerning|worrisome|questionable|possible|probable|new|developing|worsen\w*|"
    r"improv\w*|residual|persistent|loss|shift\w*|displace\w*|rotat\w*)\b",
    re.I,
)
_NORMAL = re.compile(
    r"\b(?:normal\w*|clear\w*|unremarkable|intact|midline|stable|unchanged|similar|negative|patent|"
    r"preserved|maintained|symmetric\w*|sharp|satisfactory|appropriate\w*|benign|well[- ]\w+|"
    r"within\s+(?:normal\s+)?limits|limits\s+of\s+normal|grossly|expected|no\s+(?:\w+\s+)?change)\b",
    re.I,
)
_TECHNIQUE = re.compile(
    r"\b(?:views?|radiographs?|examination|exam|films?|projections?|study|studies|comparison|compared|"
    r"portable|frontal|lateral|pa|ap|supine|upright|technique|images?|obtained|performed|provided|"
    r"available|lordotic|dated?|x-\w*|xray\w*|limited|nondiagnostic|positioning|inspiration|"
    r"technically|underpenetrated|overpenetrated)\b",
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
    r"chest|ultrasound|labs?|testing)|return\s+(?:if|to|for|with)|consider\b|should\s+be\s+(?:obtained|"
    r"performed|considered)|is\s+suggested|are\s+suggested|suggest\s+(?:follow|repeat|correlation|"
    r"further|ct|mri)|advised?|clinical\s+correlation|correlate|re-?evaluat\w*|recheck\w*|schedul\w*|"
    r"appointment|outpatient|further\s+(?:evaluation|characteri[sz]ation|imaging|workup|work-up)|"
    r"in\s+\d+\s*(?:-\s*\d+\s*)?(?:days?|weeks?|months?|years?))\b",
    re.I,
)
_DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:-\s*\d+(?:\.\d+)?\s*)?(?:mg|mcg|µg|ug|g|grams?|units?|u|iu|meq|mmol|mL|ml|"
    r"puffs?|tabs?|tablets?|capsules?|drops?)\b",
    re.I,
)
_STRONG_DOSE = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|ug|units?|iu|meq)\b", re.I)
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
    r"\b(?:consistent\s+with|compatible\s+with|suggestive\s+of|diagnostic\s+of|in\s+keeping\s+with)\s+",
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
        return "positive"
    if needs_lexicon or normal or _TECHNIQUE.search(fragment):
        return "normal" if normal else "neutral"
    words = len(_content_words(fragment))
    if default_positive and (words >= 2 or (words == 1 and any(char.isdigit() for char in fragment))):
        return "positive"  # "DISH of the thoracic spine", "grade 2"
    return "neutral"


def _clauses(text: str, sentence: Sentence) -> list[_Clause]:
    """Non-negated clauses of a sentence, labelled, with absolute offsets."""
    body = text[sentence.start : sentence.end]
    negated = negated_spans(body)
    negated_ends = [end for _, end in negated]
    default_positive = sentence.section in _DEFAULT_POSITIVE
    kept_parts: list[str] = []
    cursor = 0
    for span_start, span_end in negated:
        kept_parts.append(body[cursor:span_start])
        cursor = span_end
    kept_parts.append(body[cursor:])
    normal_sentence = _NORMAL.search(" ".join(kept_parts)) is not None
    pieces: list[tuple[int, int]] = []
    position = 0
    for separator in _CLAUSE_SPLIT.finditer(body):
        if separator.group() == ":" and len(body[position : separator.start()].split()) <= 3:
            continue  # a short label stays with its clause: "HEART: Mildly enlarged"
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
            clauses.append(_Clause(sentence.start + start, sentence.start + end, label))
    return clauses


_LEADING_FILLER = re.compile(r"^(?:and|or|but|with|also|then|however|specifically|otherwise)\b[\s,]*", re.I)


_TRAILING_FILLER = re.compile(r"[\s,]*\b(?:and|or|but|with|which|otherwise|also|then)$", re.I)


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


def _positive_spans(clauses: list[_Clause]) -> list[tuple[int, int]]:
    """Merge runs of consecutive positive clauses into spans (a normal clause breaks a run)."""
    spans: list[tuple[int, int]] = []
    previous_positive = False
    for clause in clauses:
        if clause.label == "positive":
            if previous_positive:
                spans[-1] = (spans[-1][0], clause.end)
            else:
                spans.append((clause.start, clause.end))
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


def _clean(fragment: str) -> str:
    """Collapse whitespace, drop filler openings, capitalize; the result is display text."""
    text = " ".join(fragment.split())
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
    _keys: list[tuple[str, set[str]]] = field(default_factory=list)  # lower-cased text, tokens

    def add(self, text: str, quote: str, merge_similar: bool = True) -> None:
        if not text or not quote.strip():
            return
        quote = quote[:_MAX_FIELD_CHARS]
        lowered, tokens = text.lower(), _tokens(text)
        for item, (item_lowered, item_tokens) in zip(self.items, self._keys, strict=True):
            if item_lowered == lowered or (merge_similar and _similar_tokens(item_tokens, tokens)):
                if quote not in item["evidence"] and len(item["evidence"]) < _MAX_EVIDENCE:
                    item["evidence"].append(quote)
                return
        if len(self.items) < _MAX_ITEMS:
            self.items.append(Item(text=text, evidence=[quote]))
            self._keys.append((lowered, tokens))


def _has_follow_up_cue(fragment: str) -> bool:
    """A follow-up cue outside every negation ("no follow-up needed" is not a follow-up)."""
    negated = negated_spans(fragment)
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
    text = " ".join(fragment.split())
    if ":" in text and text.rsplit(":", 1)[1].strip():
        text = text.rsplit(":", 1)[1]
    cue = _DIAGNOSIS_CUE.search(text)
    if cue is not None and text[cue.end() :].strip():
        text = text[cue.end() :]
    cut = _DIAGNOSIS_CUT.search(text)
    if cut is not None and _content_words(text[: cut.start()]):
        text = text[: cut.start()]
    words = text.split()
    if len(words) > _MAX_DIAGNOSIS_WORDS:
        text = " ".join(words[:_MAX_DIAGNOSIS_WORDS])
    return _clean(text)


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
    diagnoses: list[Item]
    impression_positive: list[str]
    impression_no_acute: bool
    has_impression: bool
    has_findings: bool


def _analyse(text: str, sections: list[Section], sentences: list[Sentence]) -> _Analysis:
    kinds = {section.kind for section in sections}
    has_primary = bool(kinds & _FINDING_SECTIONS)
    primary = _Collector([])
    secondary = _Collector([])
    from_diagnoses = _Collector([])
    diagnoses = _Collector([])
    impression_positive: list[str] = []
    impression_no_acute = False
    for sentence in sentences:
        if sentence.section in _NO_FINDING_SECTIONS:
            continue
        body = text[sentence.start : sentence.end]
        if _ADMIN_LINE.search(body):
            continue
        if sentence.section in _SECONDARY_FINDING_SECTIONS and _is_title(body):
            continue  # "SURGICAL PATHOLOGY REPORT"
        clauses = _clauses(text, sentence)
        positive_spans = _positive_spans(clauses)
        if sentence.section is SectionKind.IMPRESSION:
            if positive_spans:
                # The summary quotes the whole impression sentence, pertinent negatives included
                # ("Cardiomegaly without superimposed acute disease").
                impression_positive.append(_clean(body))
            elif _NO_ACUTE.search(body):
                impression_no_acute = True
        if sentence.section is SectionKind.ASSESSMENT_PLAN:
            # "1. COPD exacerbation - continue prednisone": the problem is the first clause.
            if _PLAN_VERB.match(body) or not clauses:
                continue
            clauses = clauses[:1]
            positive_spans = _positive_spans(clauses)
        for start, end in positive_spans:
            quote = text[start:end]
            finding = _clean(quote)
            if not finding:
                continue
            if sentence.section in _FINDING_SECTIONS:
                primary.add(finding, quote)
            elif sentence.section in _SECONDARY_FINDING_SECTIONS and _STRONG_ABNORMAL.search(quote):
                secondary.add(finding, quote)
            elif sentence.section in _DIAGNOSIS_SECTIONS:
                from_diagnoses.add(finding, quote)
            if sentence.section in _DIAGNOSIS_SECTIONS:
                device_only = bool(_DEVICE_OR_PROCEDURE.search(quote)) and not _disease_term(quote)
                if not device_only:
                    diagnoses.add(_short_diagnosis(quote), quote)
    for collector in (secondary, *(() if has_primary else (from_diagnoses,))):
        for item in collector.items:
            for quote in item["evidence"]:
                primary.add(item["text"], quote)
    return _Analysis(
        key_findings=primary.items,
        diagnoses=diagnoses.items,
        impression_positive=impression_positive,
        impression_no_acute=impression_no_acute,
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


def _summary(analysis: _Analysis, medications: list[Item], follow_up: list[Item]) -> str:
    """One to three sentences: the impression, else diagnoses, else findings, else "no acute"."""
    sentences: list[str] = []
    if analysis.impression_positive:
        room = 2 if follow_up or analysis.impression_no_acute else 3
        sentences.extend(_sentence(item) for item in analysis.impression_positive[:room])
        if analysis.impression_no_acute and len(sentences) < 3:
            sentences.append(NO_ACUTE_ABNORMALITY)
    elif analysis.has_impression:
        sentences.append(NO_ACUTE_ABNORMALITY)
        if analysis.key_findings:
            sentences.append(
                _sentence("Other findings: " + _join([i["text"] for i in analysis.key_findings]))
            )
    elif analysis.diagnoses:
        sentences.append(_sentence("Diagnoses: " + _join([item["text"] for item in analysis.diagnoses], 4)))
        if medications:
            names = list(dict.fromkeys(_drug_name(item) for item in medications))
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            sentences.append(_sentence("Medications: " + ", ".join(names[:3]) + more))
    elif analysis.key_findings:
        sentences.append(
            _sentence("Findings include " + _join([item["text"] for item in analysis.key_findings]))
        )
    else:
        sentences.append(NO_ACUTE_ABNORMALITY)
    if follow_up and len(sentences) < 3:
        sentences.append(_sentence("Follow-up: " + _lower_first(follow_up[0]["text"])))
    summary = " ".join(sentence for sentence in sentences[:3] if sentence)
    return summary[:_MAX_SUMMARY_CHARS] or NO_ACUTE_ABNORMALITY


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
    )


def extract_report(user_text: str) -> str:
    """The report inside ``<report>…</report>`` in a prompt, or the whole prompt when untagged.

    The report starts at the first ``<report>`` after any ``</previous_reply>`` (so a quoted
    previous reply cannot hijack it) and ends at the last ``</report>`` (so a report that happens
    to contain the tag is kept whole). Surrounding whitespace is the prompt's layout and is
    stripped, so a quote taken from the result is also a substring of the submitted report.
    """
    after_reply = user_text.rfind("</previous_reply>")
    opening = user_text.find("<report>", max(after_reply, 0))
    closing = user_text.rfind("</report>")
    if opening < 0 or closing < opening:
        return user_text.strip()
    return user_text[opening + len("<report>") : closing].strip()


def summarize_prompt(system: str, user_text: str) -> ModelOutput:
    """Answer a summarization prompt like a well-behaved model would.

    Parameters
    ----------
    system:
        The system prompt (instructions); only its presence matters to this model.
    user_text:
        The user message. The report is taken from between ``<report>`` and ``</report>``; a
        repair request (one carrying ``<previous_reply>``) gets a fresh summary of the same report.

    Returns
    -------
    ModelOutput
        The summary of the report.
    """
    del system  # Instructions are baked into this model.
    return summarize_report(extract_report(user_text))
