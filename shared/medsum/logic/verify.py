"""Check every item of a model's summary against its own evidence before anyone sees it.

For each item of ``key_findings`` / ``diagnoses`` / ``medications`` / ``follow_up`` / ``allergies``, in
this order:

1. **grounded**: at least one evidence quote is located in the report (exactly, then ignoring case and
   runs of whitespace). Otherwise the item is dropped (``ungrounded``).
2. **supported**: the item's concept words (content words other than location, size, severity and time
   modifiers) appear in its located evidence, allowing inflection ("opacities" ~ "opacity") and a few
   organ adjectives ("cardiac" ~ "heart"); at most one in four may be missing (a paraphrase), and the
   item's side may not contradict the evidence's ("left" vs "right"). Otherwise dropped
   (``unsupported``).
3. **not negated**: the concept is negated in every evidence sentence that holds it (NegEx/ConText,
   ``medsum.logic.negation``): dropped (``negated``).
   An allergy item that states there is none ("NKDA", "No known allergies", "None") is dropped the
   same way: the ``allergies`` list holds substances only.
4. **certainty**: hedged evidence ("possible", "cannot be excluded", "versus") makes the item
   ``uncertain`` whatever the model said; an item the model called uncertain stays uncertain.

Separately, the summary sentence is checked for asserting a finding the report only ever negates.
The result carries counts and flags only, never report text (no PHI in any count, flag or log line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

from medsum.logic.negation import ReportContext, analyze, sentence_spans
from medsum.models import (
    Certainty,
    DroppedCounts,
    EvidenceSpan,
    ModelItem,
    SummaryItem,
    Verification,
)

VERIFIER_VERSION: Final = "2026-11-30.2"
#: The lists of the summary contract that hold items, in contract order.
ITEM_LISTS: Final = ("key_findings", "diagnoses", "medications", "follow_up", "allergies")

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
# An allergy "item" that says there is no allergy: "NKDA", "NKA", "None known", "No known allergies".
_NO_ALLERGY = re.compile(r"^\W*(?:nk[dm]?as?|none|no\s+known|denies|n/?a)\b", re.IGNORECASE)

# Words that carry no concept of their own: function words and report boilerplate.
_STOPWORDS: Final = frozenset(
    """a an the and or of in on at to for from by with without within into onto over under as is are was
    were be been being has have had this that these those there their its it which who whom than then
    also both either neither per via s p w o x vs patient pt report reported finding findings noted note
    seen see visualized demonstrated demonstrate demonstrates shows show showing present presence
    evidence consistent compatible suggest suggests suggesting suggestive concerning suspicious possible
    possibly probable probably likely unlikely may might could can cannot represent represents
    representing status post history hx of mg-dl recommend recommended recommendation consider considered
    follow-up follow up repeat further additional clinical clinically correlation correlate
    appear appears appearing identified identify change changes process""".split()  # noqa: SIM905
)

# Modifiers: where, how big, how bad, since when. They qualify a concept but are not one.
_MODIFIERS: Final = frozenset(
    """left right bilateral bilaterally unilateral upper lower middle mid lobe lobes base bases basal
    basilar apex apices apical zone zones side sided anterior posterior lateral medial superior inferior
    proximal distal central peripheral diffuse diffusely focal multifocal patchy scattered
    mild mildly moderate moderately severe severely small smaller large larger tiny minimal minor trace
    marked markedly slight slightly significant subtle prominent borderline
    stable unchanged new newly chronic acute subacute old prior previous previously again persistent
    persists redemonstrated interval increased increasing decreased decreasing improved improving
    worsened worsening resolving residual recent""".split()  # noqa: SIM905 - a word list reads best as prose
)
_SIDES: Final = {"left": "left", "right": "right", "bilateral": "bilateral", "bilaterally": "bilateral"}
# Organ nouns and their adjectives: an item may name one where its evidence uses the other.
_EQUIVALENT: Final = {
    "heart": "cardiac",
    "kidney": "renal",
    "kidneys": "renal",
    "lung": "pulmonary",
    "lungs": "pulmonary",
    "liver": "hepatic",
    "bone": "osseous",
    "bones": "osseous",
    "chest": "thoracic",
    "brain": "cerebral",
}


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int


def _words(text: str, offset: int = 0) -> list[_Word]:
    lowered = text.lower()
    return [_Word(m.group(), m.start() + offset, m.end() + offset) for m in _WORD.finditer(lowered)]


@lru_cache(maxsize=4096)
def _norm(word: str) -> str:
    word = _EQUIVALENT.get(word, word)
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=16384)
def same_word(a: str, b: str) -> bool:
    """``a`` and ``b`` are inflections of one word: equal once plurals are removed, or sharing a
    prefix of at least ``max(6, shorter - 2)`` characters ("enlarged" ~ "enlargement", but not
    "pneumonia" ~ "pneumothorax" nor "cardiac" ~ "cardiomegaly"). Numbers match only themselves."""
    na, nb = _norm(a), _norm(b)
    if na == nb:
        return True
    if na.isdigit() or nb.isdigit():
        return False
    shortest = min(len(na), len(nb))
    need = max(6, shortest - 2)
    if shortest < need:
        return False
    return na[:need] == nb[:need]


def concept_words(text: str) -> list[str]:
    """The words of ``text`` that name its concept: content words other than modifiers (when every
    content word is a modifier, those)."""
    content = [w.text for w in _words(text) if w.text not in _STOPWORDS]
    concepts = [w for w in content if w not in _MODIFIERS]
    return concepts or content


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _sides(words: Iterable[str]) -> set[str]:
    return {_SIDES[w] for w in words if w in _SIDES}


Outcome = Literal["kept", "ungrounded", "unsupported", "negated"]


@dataclass(frozen=True)
class ItemCheck:
    """The verdict on one item: its outcome, the item as shown (when kept) and the quotes not found."""

    outcome: Outcome
    item: SummaryItem | None
    quotes_not_found: int
    marked_uncertain: bool = False


def locate(text: str, quote: str, region: tuple[int, int] | None = None) -> EvidenceSpan | None:
    """Offsets of ``quote`` in ``text``: exact first, then ignoring case and runs of whitespace.
    With ``region``, the quote is looked for there first, then in the whole text."""
    if region is not None and region != (0, len(text)):
        start, end = region
        found = locate(text[start:end], quote)
        if found is not None:
            return EvidenceSpan(start=found.start + start, end=found.end + start)
    exact = text.find(quote)
    if exact >= 0:
        return EvidenceSpan(start=exact, end=exact + len(quote))
    words = quote.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    match = pattern.search(text)
    return EvidenceSpan(start=match.start(), end=match.end()) if match else None


def _supported(concepts: Sequence[str], item_words: Sequence[str], evidence_words: Sequence[str]) -> bool:
    if not concepts:
        return False
    missing = [c for c in concepts if not any(same_word(c, e) for e in evidence_words)]
    if len(missing) > len(concepts) // 4 or any(_has_digit(word) for word in missing):
        return False  # too little of the item is in its evidence, or a number (dose, size) is not
    item_sides, evidence_sides = _sides(item_words), _sides(evidence_words)
    return not (item_sides and evidence_sides and not item_sides & evidence_sides)


def _assess(report: ReportContext, span: EvidenceSpan, concepts: Sequence[str]) -> tuple[bool, bool]:
    """(negated, uncertain) of the item's concept in the sentences that hold its evidence ``span``."""
    negated_everywhere, uncertain, assessed = True, False, False
    for index in report.overlapping(span.start, span.end):
        assessed = True
        s_start, s_end = report.sentences[index]
        context = report.sentence(index)
        words = _words(report.text[s_start:s_end], s_start)
        # The concept's occurrences, preferring those inside the quoted evidence.
        matched = [w for w in words if any(same_word(c, w.text) for c in concepts)]
        inside = [w for w in matched if w.start >= span.start and w.end <= span.end]
        chosen = inside or matched
        if chosen:
            c_start, c_end = min(w.start for w in chosen), max(w.end for w in chosen)
        else:
            c_start, c_end = max(span.start, s_start), min(span.end, s_end)
        assertion = context.assertion(c_start - s_start, max(c_end, c_start + 1) - s_start)
        negated_everywhere = negated_everywhere and assertion.negated
        uncertain = uncertain or assertion.uncertain
    return negated_everywhere and assessed, uncertain


def check_item(
    item: ModelItem,
    report: ReportContext,
    region: tuple[int, int] | None = None,
    list_name: str | None = None,
) -> ItemCheck:
    """Ground, support, negation and certainty checks of one item of list ``list_name`` (see the module
    docstring)."""
    spans: list[EvidenceSpan] = []
    missing = 0
    for quote in item.evidence:
        span = locate(report.text, quote, region)
        if span is None:
            missing += 1
        elif span not in spans:
            spans.append(span)
    if not spans:
        return ItemCheck("ungrounded", None, missing)
    item_words = [w.text for w in _words(item.text)]
    concepts = concept_words(item.text)
    evidence_words = [w.text for span in spans for w in _words(report.text[span.start : span.end])]
    if not _supported(concepts, item_words, evidence_words):
        return ItemCheck("unsupported", None, missing)
    verdicts = [_assess(report, span, concepts) for span in spans]
    if all(negated for negated, _ in verdicts) or (list_name == "allergies" and _NO_ALLERGY.match(item.text)):
        return ItemCheck("negated", None, missing)
    hedged = any(uncertain for _, uncertain in verdicts)
    certainty = Certainty.UNCERTAIN if hedged or item.certainty is Certainty.UNCERTAIN else Certainty.DEFINITE
    shown = SummaryItem(text=item.text, evidence=spans, certainty=certainty)
    # The model stated a hedged finding as definite: it neither said "uncertain" nor kept the hedge
    # in the item's own words ("Possible pneumonia" is not stated as definite).
    stated_definite = item.certainty is not Certainty.UNCERTAIN and not analyze(item.text).uncertain_scopes
    return ItemCheck("kept", shown, missing, marked_uncertain=hedged and stated_definite)


@dataclass
class Tally:
    """Running counts over the items of one summary (several sections add into one tally)."""

    checked: int = 0
    kept: int = 0
    ungrounded: int = 0
    unsupported: int = 0
    negated: int = 0
    marked_uncertain: int = 0
    quotes_not_found: int = 0
    lists: dict[str, list[SummaryItem]] = field(default_factory=lambda: {name: [] for name in ITEM_LISTS})

    def add(self, list_name: str, check: ItemCheck) -> None:
        if check.item is not None and any(_same_item(check.item, other) for other in self.lists[list_name]):
            return  # the same item again (another section): shown and counted once
        self.checked += 1
        self.quotes_not_found += check.quotes_not_found
        if check.item is None:
            setattr(self, check.outcome, getattr(self, check.outcome) + 1)
            return
        self.kept += 1
        self.marked_uncertain += int(check.marked_uncertain)
        self.lists[list_name].append(check.item)

    def verification(self, summary_contradicts_report: bool, sections: int = 1) -> Verification:
        dropped = DroppedCounts(
            ungrounded=self.ungrounded, unsupported=self.unsupported, negated=self.negated
        )
        return Verification(
            items_checked=self.checked,
            items_kept=self.kept,
            dropped=dropped,
            marked_uncertain=self.marked_uncertain,
            quotes_not_found=self.quotes_not_found,
            summary_contradicts_report=summary_contradicts_report,
            needs_review=bool(
                self.ungrounded or self.unsupported or self.negated or summary_contradicts_report
            ),
            sections=sections,
            verifier_version=VERIFIER_VERSION,
        )


def _same_item(a: SummaryItem, b: SummaryItem) -> bool:
    return " ".join(a.text.lower().split()) == " ".join(b.text.lower().split())


def check_items(
    lists: dict[str, list[ModelItem]],
    report: ReportContext,
    tally: Tally,
    region: tuple[int, int] | None = None,
) -> None:
    """Check every item of ``lists`` (keyed by contract list name) into ``tally``."""
    for name in ITEM_LISTS:
        for item in lists.get(name, []):
            tally.add(name, check_item(item, report, region, name))


def _concept_tokens(text: str) -> list[_Word]:
    return [
        w
        for w in _words(text)
        if w.text not in _STOPWORDS and w.text not in _MODIFIERS and not w.text.isdigit()
    ]


def summary_contradicts(summary: str, report: ReportContext) -> bool:
    """True when ``summary`` asserts (does not negate) a concept word that the report negates and
    never asserts, e.g. "Small pneumothorax." for a report that says "No pneumothorax."."""
    claimed: set[str] = set()
    for s_start, s_end in sentence_spans(summary) or [(0, len(summary))]:
        context = analyze(summary[s_start:s_end])
        for word in _concept_tokens(summary[s_start:s_end]):
            if not context.assertion(word.start, word.end).negated:
                claimed.add(word.text)
    if not claimed:
        return False
    # Only report sentences that mention a claimed word are analysed (a long report repeats itself).
    relevant: dict[str, str | None] = {}

    def claim_of(word: str) -> str | None:
        if word not in relevant:
            relevant[word] = next((c for c in claimed if same_word(word, c)), None)
        return relevant[word]

    negated: set[str] = set()
    asserted: set[str] = set()
    for index, (s_start, s_end) in enumerate(report.sentences):
        mentions = [(w, c) for w in _concept_tokens(report.text[s_start:s_end]) if (c := claim_of(w.text))]
        if not mentions:
            continue
        context = report.sentence(index)
        for word, claim in mentions:
            (negated if context.assertion(word.start, word.end).negated else asserted).add(claim)
    return bool(negated - asserted)
