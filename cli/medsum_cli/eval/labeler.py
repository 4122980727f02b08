"""A CheXpert-style observation labeler for chest X-ray text: 14 observations, negation and uncertainty aware.

Written for ``medsum eval`` from the published rule descriptions of the CheXpert labeler (Irvin et al.,
AAAI 2019, and its MIT-licensed rule files, github.com/stanfordmlgroup/chexpert-labeler) and of NegBio
(Peng et al., AMIA 2018). Like them it works in three stages:

1. **Mention extraction.** Phrases of each observation (``"pleural fluid"``, ``"effusion"`` ...) are found
   sentence by sentence; "unmention" phrases are skipped (``"pericardial effusion"`` is not a pleural
   effusion, ``"calcified nodule"`` not a lung lesion, ``"massive"`` not a mass).
2. **Mention classification**, in CheXpert's order: *pre-negation uncertainty* first ("cannot exclude X",
   "X is not excluded", "no new X"), then *negation* ("no X", "without X", "negative for X", "X has
   resolved", "X is not seen" ...), then *uncertainty* ("possible X", "X versus Y", "may represent X",
   "suspicious for X" ...). Anything else is positive. NegBio decides the scope of a cue on a dependency
   parse; this labeler uses NegEx-style scopes instead: a cue before a mention reaches it unless a
   termination word ("but", "however", "although", "except", "there is" ...) comes between, within the
   sentence (``;`` ends a sentence here).
3. **Aggregation** per report: positive (``1``) if any mention is positive, else uncertain (``-1``) if any
   is uncertain, else negative (``0``) if any is negated, else blank (``None``). ``No Finding`` is ``1``
   when no observation other than Support Devices, and none of a list of other abnormalities
   (emphysema, granuloma, scoliosis, degenerative change ...), is positive or uncertain; else ``0``.
   As in CheXpert, a positive or uncertain "heart failure" / "CHF" also makes Cardiomegaly uncertain.

Where this labeler differs from CheXpert (each a documented choice, see docs/eval.md):

- Neutral anatomy words ("heart size", "cardiac silhouette", "mediastinum", "cardiomediastinal
  contours") count only with a qualifier in their clause: enlarged / widened / prominent -> positive,
  normal / unremarkable / within (upper) normal limits -> negative, borderline -> uncertain, stable /
  unchanged -> uncertain (CheXpert's own example of ambiguity: "heart size is stable"). CheXpert labels a
  bare "the heart" positive, which makes "granuloma near the heart" a cardiomegaly.
- "likely", "probably" and an "or" between two findings ("atelectasis or scarring") are uncertainty cues.

Everything here is pure (no I/O) and deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "CHEXPERT_5",
    "NO_FINDING",
    "OBSERVATIONS",
    "PATHOLOGIES",
    "SUPPORT_DEVICES",
    "Label",
    "Labels",
    "Mention",
    "aggregate",
    "label_items",
    "label_text",
    "mentions",
    "reassures",
    "split_sentences",
]


class Label(IntEnum):
    """CheXpert's label values."""

    POSITIVE = 1
    NEGATIVE = 0
    UNCERTAIN = -1


NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"
#: The 12 pathologies, in CheXpert's order.
PATHOLOGIES: tuple[str, ...] = (
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
)
#: The 14 observations, in CheXpert's order.
OBSERVATIONS: tuple[str, ...] = (NO_FINDING, *PATHOLOGIES, SUPPORT_DEVICES)
#: The five observations of CheXpert's competition tasks, often reported as "F1-5".
CHEXPERT_5: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
#: Not one of the 14: other abnormalities that make No Finding false (CheXpert's "no finding" phrases).
OTHER = "Other abnormality"


def _words(*alternatives: str) -> str:
    return r"\b(?:" + "|".join(alternatives) + r")"


# --- Mentions ---------------------------------------------------------------------------------------------
# Each pattern is matched on lower-cased text; a match is one mention. Patterns end without \b on purpose
# where the phrase is a stem ("atelecta" matches "atelectasis" and "atelectatic").
_MENTIONS: dict[str, str] = {
    "Cardiomegaly": _words(
        r"cardiomegaly", r"cardiac enlargement", r"enlarged heart", r"enlargement of the heart"
    ),
    "Lung Lesion": _words(
        r"mass(?:es)?\b",
        r"nodul(?:e|es|ar density|ar densities|ar opacity|ar opacities|ar opacification)\b",
        r"lump",
        r"cavitary lesions?",
        r"cavitation",
        r"carcinoma",
        r"neoplasms?",
        r"tumou?rs?",
        r"malignan",
    ),
    "Lung Opacity": _words(
        r"opaci",
        r"decreased translucency",
        r"increased density",
        r"air[- ]?space (?:disease|process)",
        r"infiltrat",
        r"interstitial (?:markings?|patterns?|lung|disease|prominence|thickening)",
        r"reticular (?:patterns?|markings?|opacit)",
        r"reticulation",
        r"reticulonodular",
        r"parenchymal scarring",
        r"peribronchial thickening",
        r"bronchial wall thickening",
        r"scar(?:s|ring|red)?\b",
    ),
    "Edema": _words(
        r"edema",
        r"oedema",
        r"heart failure",
        r"chf\b",
        r"(?:pulmonary )?vascular congestion",
        r"pulmonary congestion",
        r"(?:pulmonary )?vascular indistinctness",
        r"vascular prominence",
        r"cephalization",
        r"kerley",
    ),
    "Consolidation": _words(r"consolidat"),
    "Pneumonia": _words(r"\w*pneumonia", r"pneumonitis", r"infection", r"infectious"),
    "Atelectasis": _words(r"atelecta", r"collapsed?\b"),
    "Pneumothorax": _words(r"\w*pneumothora(?:x|ces)"),
    "Pleural Effusion": _words(r"effusions?", r"pleural fluid", r"hydrothorax"),
    "Pleural Other": _words(
        r"pleural (?:thickening|scar(?:ring)?|plaques?|calcification|fibrosis)",
        r"pleuro-?parenchymal (?:scar(?:ring)?|thickening)",
        r"pleuro-?pericardial scar(?:ring)?",
        r"fibrothorax",
    ),
    "Fracture": _words(r"fractur"),
    "Support Devices": _words(
        r"pacer",
        r"pacemaker",
        r"(?:central|venous|arterial|midline|swan|ij|subclavian|picc|port|jugular)[- ]"
        r"(?:\w+ )?(?:line|catheter)s?",
        r"picc",
        r"lines\b",
        r"(?:endotracheal|et|ng|og|nasogastric|orogastric|enteric|feeding|chest|tracheostomy|dobhoff) tubes?",
        r"tubes\b",
        r"(?:prosthetic|mechanical|replaced|artificial) valves?\b",
        r"valve (?:replacement|prosthes[ie]s)",
        r"catheters?",
        r"hardware",
        r"arthroplast",
        r"icd\b",
        r"defibrillator",
        r"aicd",
        r"devices?\b",
        r"drains?\b",
        r"plates?\b",
        r"screws?\b",
        r"cannula",
        r"coils?\b",
        r"stents?\b",
        r"mediport",
        r"port-?a-?cath",
        r"(?:sternotomy|cerclage|surgical) wires?",
        r"(?:surgical|vascular) clips?",
        r"leads?\b",
        r"generator",
        r"tracheostomy",
    ),
    OTHER: _words(
        r"emphysema",
        r"blunt",
        r"densit(?:y|ies)",
        r"elevat",
        r"eventration",
        r"scoliosis",
        r"kyphosis",
        r"kyphotic",
        r"degenerat",
        r"calcifi",
        r"hyperinflat",
        r"hyperexpan",
        r"hyperlucen",
        r"overinflat",
        r"bronchospasm",
        r"asthma",
        r"hernia",
        r"copd",
        r"plaques?",
        r"osteophyt",
        r"spondylo",
        r"aortic (?:disease|ectasia|aneurysm)",
        r"aneurysm",
        r"tortuous",
        r"tortuosity",
        r"ectati",
        r"unfold",
        r"bronchiolitis",
        r"bronchitis",
        r"bronchiectasis",
        r"airways? disease",
        r"thickening",
        r"aspiration",
        r"bullae",
        r"bullous",
        r"blebs?",
        r"contusion",
        r"atherosclero",
        r"arteriosclero",
        r"osteopenia",
        r"osteoporo",
        r"metasta",
        r"granulom",
        r"pneumomediastinum",
        r"pneumoperitoneum",
        r"free air",
        r"cuffing",
        r"inflam",
        r"hypertension",
        r"lymphadenopathy",
        r"adenopathy",
        r"fibrosis",
        r"fibrotic",
        r"volume loss",
        r"deformit",
        r"hemorrhage",
        r"hematoma",
        r"cysts?\b",
        r"cystic",
        r"arthrit",
        r"arthropathy",
        r"lesions?\b",
        r"abnormalit(?:y|ies)",
        r"enlarged (?:hila|hilum|hilar)",
        r"hilar (?:enlargement|prominence|fullness)",
        r"flatten",
        r"cardiomyopathy",
        r"pericardial effusion",
    ),
}

# Phrases that look like a mention of an observation but are not.
_UNMENTIONS: dict[str, str] = {
    "Lung Lesion": _words(
        r"calcified (?:\w+ )?nodul", r"massive", r"soft tissue mass", r"granulomatous nodul"
    ),
    "Lung Opacity": _words(r"pleural scar", r"pleuro-?parenchymal scar", r"pleuro-?pericardial scar"),
    "Pleural Effusion": _words(r"pericardial effusion"),
    "Atelectasis": _words(
        r"(?:vertebral|vertebra|vertebral body) (?:\w+ )?collapse", r"collapse of (?:the )?\w* ?vertebra"
    ),
    "Support Devices": _words(
        r"lead(?:s)? (?:to|up|into)",
        r"(?:pleural|parenchymal|fissural|septal|kerley \w?) ?lines?",
        r"lines? of",
        r"plate-?like",
    ),
    OTHER: _words(r"elevated (?:\w+ )?(?:wbc|white)"),
}

# Neutral anatomy: a mention only with a qualifier in its clause (see the module docstring).
_ANATOMY: dict[str, str] = {
    "Cardiomegaly": _words(
        r"heart size",
        r"size of the heart",
        r"cardiac size",
        r"(?:the )?heart\b",
        r"cardiac (?:silhouette|shadow|contours?|outline|diameter)",
        r"heart (?:shadow|silhouette|contours?)",
    ),
    "Enlarged Cardiomediastinum": _words(
        r"(?:cardio)?mediastin(?:um|al)",
        r"superior mediastinum",
        r"pericardial silhouette",
        r"aortic knob",
    ),
}
_ENLARGED = re.compile(
    r"\b(?:enlarg\w*|large|larger|prominen\w*|widen\w*|wide|increased|increase in size|cardiomegal\w*)\b"
)
_BORDERLINE = re.compile(r"\b(?:borderline|top[- ]normal|upper (?:range|end) of normal|mildly prominent)\b")
_NORMAL = re.compile(
    r"\b(?:normal|unremarkable|within (?:the )?(?:upper )?(?:limits of |range of )?normal|"
    r"upper limits? of normal|not enlarged|negative|satisfactory|maintained|preserved)\b"
)
_STABLE = re.compile(r"\b(?:stable|unchanged|similar|no (?:\w+ )?change|not changed|again (?:seen|noted))\b")

# --- Cues -------------------------------------------------------------------------------------------------
_PRE_NEG_UNCERTAIN = re.compile(
    r"\b(?:cannot|can ?not|could not|can't|couldn't|not able to|unable to) (?:be )?(?:entirely |completely |"
    r"totally |definitely )?(?:exclude[ds]?|rule[ds]? out)\b|\bno new\b|\bno evidence to rule out\b"
)
_POST_NEG_UNCERTAIN = re.compile(
    r"\b(?:(?:cannot|can ?not|could not|can't|couldn't|may not|not) (?:be )?(?:entirely |completely |"
    r"totally |definitely )?(?:excluded|ruled out))\b"
)
_PRE_NEGATION = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|absent|rather than|resolution of|"
    r"resolved|resolving|removal of|removed|interval removal|history of|hx of|rule out|r/o|ruled out|exclude|"
    r"excluded|to exclude|disappearance of|clearing of|cleared|nor|never|none|negative)\b"
)
# "no change", "not only": a negation word that negates nothing after it.
_PSEUDO_NEGATION = re.compile(
    r"\b(?:no|not|without) (?:significant |interval |definite |appreciable |substantial |gross |acute )?"
    r"(?:change|changed|increase|increased|decrease|decreased|worsening|progression|only|necessarily|"
    r"cause|extend|drain)\b"
)
_POST_NEGATION = re.compile(
    r"\b(?:(?:is|are|was|were|has|have|has been|have been)\s+)?(?:now\s+|since\s+|completely\s+|"
    r"nearly\s+|entirely\s+)?(?:absent|resolved|removed|cleared|gone|no longer (?:seen|visible|present|"
    r"evident|identified|visualized)|not (?:seen|identified|present|visualized|visible|evident|"
    r"demonstrated|appreciated|detected|noted|apparent|shown|observed))\b"
)
_PRE_UNCERTAIN = re.compile(
    r"\b(?:possible|possibly|probable|probably|likely|presumabl[ey]|presumed|questionable|question of|"
    r"questionably|\?|suspect(?:ed)?|suspicious(?: for| of)?|suspicion (?:for|of)|concern(?:ing)? for|"
    r"worrisome for|may|might|could|would|maybe|perhaps|suggest(?:s|ed|ing|ive)?(?: of)?|"
    r"suggestion of|differential(?: diagnosis)?(?: includes?)?|consider(?:ed)?|"
    r"favou?r(?:ed|s)?|borderline|equivocal|indeterminate|versus|vs\.?|uncertain|"
    r"not (?:entirely )?certain|(?:to )?evaluate for|assess for|question)(?=\W|$)"
)
# Right after the mention: "X?", "X suspected", "X is (most) likely", "X is thought to be possible".
_POST_UNCERTAIN = re.compile(
    r"\s*\?|\s*(?:(?:is|are|was|were|seems?|appears?|thought to be|felt to be)\s+)?"
    r"(?:(?:most|more|less|also|still|now|very|highly|strongly|clinically)\s+)?"
    r"(?:suspected|questioned|questionable|possible|likely|probable|favou?red|considered)\b"
)
# A cue does not reach past these.
_TERMINATION = re.compile(
    r"\b(?:but|however|although|though|except|aside from|apart from|other than|which|whereas|while|"
    r"there (?:is|are|has been|have been|was|were)|now (?:there|with)|with the exception of|"
    r"otherwise|secondary to|due to|in addition|additionally)\b|[:;]"
)
# Between two mentions: an alternative ("X or Y", "X versus Y", "X and/or Y") makes both uncertain.
_ALTERNATIVE_GAP = re.compile(r"^[\s,]*(?:and/or|or|versus|vs\.?)\s+(?:[a-z-]+\s+){0,3}$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*[;\n]+\s*|\s+(?=\d{1,2}[.)]\s)")
_LIST_NUMBER = re.compile(r"\d{1,2}[.)]")
_WORD_REST = re.compile(r"[\w-]*")
_CLAUSE_BREAK = re.compile(
    r",|\bbut\b|\bhowever\b|\bwhile\b|\bwhereas\b|\bwith\b|\bwithout\b|"
    r"\band\b(?= (?:the|a|an|there|no|mild|moderate)\b)"
)

_COMPILED_MENTIONS = {name: re.compile(pattern) for name, pattern in _MENTIONS.items()}
_COMPILED_UNMENTIONS = {name: re.compile(pattern) for name, pattern in _UNMENTIONS.items()}
_COMPILED_ANATOMY = {name: re.compile(pattern) for name, pattern in _ANATOMY.items()}


@dataclass(frozen=True)
class Mention:
    """One mention of an observation in a sentence, and how it is stated.

    Attributes
    ----------
    observation
        One of :data:`OBSERVATIONS` (not No Finding) or ``"Other abnormality"``.
    text
        The words matched (lower-cased).
    label
        How the sentence states it.
    """

    observation: str
    text: str
    label: Label


@dataclass(frozen=True)
class Labels:
    """The labels of one text: CheXpert's encoding per observation.

    Attributes
    ----------
    values
        Observation -> ``1`` positive, ``0`` negative, ``-1`` uncertain, ``None`` not mentioned, for the
        13 observations other than No Finding; No Finding is ``1`` or ``0``.
    other
        Other abnormalities stated positive or uncertain (they make No Finding ``0``).
    """

    values: Mapping[str, int | None]
    other: tuple[str, ...] = ()

    def __getitem__(self, observation: str) -> int | None:
        return self.values[observation]

    def positive(self, observation: str) -> bool:
        """Whether ``observation`` is labelled positive (``1``)."""
        return self.values.get(observation) == Label.POSITIVE

    @property
    def no_finding(self) -> bool:
        """Whether the text states nothing abnormal (No Finding is ``1``)."""
        return self.values.get(NO_FINDING) == Label.POSITIVE

    def as_dict(self) -> dict[str, int | None]:
        """The values in :data:`OBSERVATIONS` order (for JSON)."""
        return {name: self.values.get(name) for name in OBSERVATIONS}


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences: at ``.``, ``!``, ``?`` followed by space, ``;``, new lines and list
    numbers ("1. ... 2. ..."). Empty pieces are dropped.

    Parameters
    ----------
    text
        Any text.

    Returns
    -------
    list of str
        The sentences, in order, stripped.
    """
    sentences: list[str] = []
    number = ""
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if _LIST_NUMBER.fullmatch(piece):
            number = f"{piece} "  # "1." belongs to the sentence it numbers
        elif piece.strip(" ."):
            sentences.append(number + piece)
            number = ""
    return sentences


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in spans)


def _terminated(text: str) -> bool:
    return _TERMINATION.search(text) is not None


def _cue_before(
    cues: re.Pattern[str], sentence: str, start: int, *, pseudo: re.Pattern[str] | None = None
) -> bool:
    """Whether a cue before ``start`` reaches the mention (no termination word in between)."""
    for cue in cues.finditer(sentence, 0, start):
        if pseudo is not None and pseudo.match(sentence, cue.start()):
            continue
        if not _terminated(sentence[cue.end() : start]):
            return True
    return False


def _cue_after(cues: re.Pattern[str], sentence: str, end: int, words: int = 6) -> bool:
    """Whether a cue right after ``end`` (within ``words`` words, no termination word in between) reaches
    back to the mention."""
    for cue in cues.finditer(sentence, end):
        gap = sentence[end : cue.start()]
        if len(gap.split()) <= words and not _terminated(gap):
            return True
    return False


def _classify(sentence: str, start: int, end: int) -> Label:
    if _cue_before(_PRE_NEG_UNCERTAIN, sentence, start) or _cue_after(_POST_NEG_UNCERTAIN, sentence, end):
        return Label.UNCERTAIN
    if _cue_before(_PRE_NEGATION, sentence, start, pseudo=_PSEUDO_NEGATION) or _cue_after(
        _POST_NEGATION, sentence, end
    ):
        return Label.NEGATIVE
    # "X is suspected": right after the mention only ("X and suspected Y" does not hedge X).
    if _cue_before(_PRE_UNCERTAIN, sentence, start) or _POST_UNCERTAIN.match(sentence, end):
        return Label.UNCERTAIN
    return Label.POSITIVE


def _clause_around(sentence: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for found in _CLAUSE_BREAK.finditer(sentence, 0, start):
        left = found.end()
    after = _CLAUSE_BREAK.search(sentence, end)
    return left, after.start() if after else len(sentence)


def _anatomy_label(sentence: str, start: int, end: int) -> Label | None:
    """The label of a neutral anatomy mention from the qualifiers of its clause, or None (no qualifier)."""
    left, right = _clause_around(sentence, start, end)
    clause = sentence[left:right]
    if _BORDERLINE.search(clause):
        return Label.UNCERTAIN
    enlarged = _ENLARGED.search(clause)
    if enlarged is not None:
        word_at = left + enlarged.start()
        if _cue_before(_PRE_NEGATION, sentence[left:word_at], word_at - left, pseudo=_PSEUDO_NEGATION):
            return Label.NEGATIVE
        return _classify(sentence, min(start, word_at), max(end, left + enlarged.end()))
    if _NORMAL.search(clause):
        return Label.NEGATIVE
    if _STABLE.search(clause):
        return Label.UNCERTAIN
    return None


def _sentence_mentions(sentence: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, observation)`` of every pathology, device and other-abnormality mention."""
    for name, pattern in _COMPILED_MENTIONS.items():
        unmention = _COMPILED_UNMENTIONS.get(name)
        excluded = [m.span() for m in unmention.finditer(sentence)] if unmention else []
        for found in pattern.finditer(sentence):
            if not _overlaps(found.start(), found.end(), excluded):
                # A stem ("atelecta") stands for its whole word ("atelectasis").
                end = _WORD_REST.match(sentence, found.end())
                yield found.start(), end.end() if end else found.end(), name


def mentions(text: str) -> list[Mention]:
    """Find and classify every mention in ``text``.

    Parameters
    ----------
    text
        A report section, a summary or an item's text.

    Returns
    -------
    list of Mention
        In sentence order; neutral anatomy words appear only when a qualifier gives them a label.
    """
    found: list[Mention] = []
    for raw in split_sentences(text):
        sentence = " ".join(raw.lower().split())
        spans = sorted(_sentence_mentions(sentence))
        labels = [_classify(sentence, start, end) for start, end, _ in spans]
        # "X or Y", "X versus Y": both are alternatives, so neither is stated as definite.
        for index in range(len(spans) - 1):
            gap = sentence[spans[index][1] : spans[index + 1][0]]
            if _ALTERNATIVE_GAP.match(gap):
                for position in (index, index + 1):
                    if labels[position] == Label.POSITIVE:
                        labels[position] = Label.UNCERTAIN
        for (start, end, name), label in zip(spans, labels, strict=True):
            found.append(Mention(name, sentence[start:end], label))
        taken = [(start, end) for start, end, _ in spans]
        for name, pattern in _COMPILED_ANATOMY.items():
            for anatomy in pattern.finditer(sentence):
                if _overlaps(anatomy.start(), anatomy.end(), taken):
                    continue
                anatomy_label = _anatomy_label(sentence, anatomy.start(), anatomy.end())
                if anatomy_label is not None:
                    found.append(Mention(name, anatomy.group(), anatomy_label))
    return found


def aggregate(found: Iterable[Mention]) -> Labels:
    """Aggregate mentions into one label per observation (CheXpert's rules, see the module docstring).

    Parameters
    ----------
    found
        Mentions, e.g. of :func:`mentions`.

    Returns
    -------
    Labels
        The labels.
    """
    per_observation: dict[str, set[Label]] = {}
    other: list[str] = []
    for mention in found:
        if mention.observation == OTHER:
            if mention.label != Label.NEGATIVE:
                other.append(mention.text)
            continue
        per_observation.setdefault(mention.observation, set()).add(mention.label)
        if mention.text in ("heart failure", "chf") and mention.label != Label.NEGATIVE:
            per_observation.setdefault("Cardiomegaly", set()).add(Label.UNCERTAIN)
    values: dict[str, int | None] = {}
    for name in (*PATHOLOGIES, SUPPORT_DEVICES):
        labels = per_observation.get(name)
        if not labels:
            values[name] = None
        elif Label.POSITIVE in labels:
            values[name] = int(Label.POSITIVE)
        elif Label.UNCERTAIN in labels:
            values[name] = int(Label.UNCERTAIN)
        else:
            values[name] = int(Label.NEGATIVE)
    finding = other or any(values[name] in (Label.POSITIVE, Label.UNCERTAIN) for name in PATHOLOGIES)
    values[NO_FINDING] = int(Label.NEGATIVE if finding else Label.POSITIVE)
    return Labels(values=values, other=tuple(dict.fromkeys(other)))


def label_text(text: str) -> Labels:
    """Label a text (e.g. a report's IMPRESSION).

    Parameters
    ----------
    text
        The text.

    Returns
    -------
    Labels
        One label per observation.

    Examples
    --------
    >>> labels = label_text("No pneumothorax. Possible right lower lobe pneumonia.")
    >>> labels["Pneumothorax"], labels["Pneumonia"], labels.no_finding
    (0, -1, False)
    """
    return aggregate(mentions(text))


def reassures(text: str) -> bool:
    """Whether ``text`` reassures: it rules something out or calls it normal ("No acute cardiopulmonary
    abnormality.", "Heart size is normal.") and states nothing abnormal. A text that names only what the
    labeler has no observation for ("Findings include mild anterior wedging.") does not reassure.

    >>> reassures("No acute cardiopulmonary abnormality."), reassures("Findings include mild wedging.")
    (True, False)
    """
    found = mentions(text)
    return aggregate(found).no_finding and any(m.label == Label.NEGATIVE for m in found)


def label_items(texts: Iterable[tuple[str, bool]]) -> Labels:
    """Label a summary: its sentence and its items, each ``(text, uncertain)``.

    An item the summary marks ``uncertain`` cannot state anything as definite: its positive mentions
    count as uncertain.

    Parameters
    ----------
    texts
        ``(text, uncertain)`` pairs: the summary sentence (``uncertain`` False) and each item's text.

    Returns
    -------
    Labels
        One label per observation.
    """
    found: list[Mention] = []
    for text, uncertain in texts:
        for mention in mentions(text):
            if uncertain and mention.label == Label.POSITIVE:
                mention = Mention(mention.observation, mention.text, Label.UNCERTAIN)
            found.append(mention)
    return aggregate(found)
