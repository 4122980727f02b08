"""Negation and uncertainty (hedge) of clinical concepts, NegEx/ConText style. Pure, stdlib only.

A concept is a character span of a sentence (``"pneumothorax"`` in ``"No pneumothorax."``). Trigger
phrases open a *scope* (a character range of the sentence); a concept is negated when most of its words
lie in a negation scope, uncertain when most lie in an uncertainty scope. Both can hold ("pneumonia is
unlikely"). The method follows NegEx (Chapman et al. 2001, J Biomed Inform 34:301) and ConText (Harkema
et al. 2009, J Biomed Inform 42:839); the phrase lists and the code are ours.

Trigger classes (the table ``_RULES`` below):

- ``PREN`` pre-negation, scope forward: "no", "not", "without", "denies", "negative for", "free of",
  "no evidence of", "absence of", "resolution of", "never", "ruled out for", ...
- ``POST`` post-negation, scope backward: "not seen", "not identified", "no longer visualized", "none"
  ("effusion: none"; "None available" negates nothing).
- ``NEG`` negation either way, backward when there is something before it, else forward: "resolved",
  "removed", "absent", "ruled out", "gone" ("the effusion has resolved", "resolved effusion"); and
  "free" / "negative" only at the end of a clause ("pain free.", "cultures negative."), so "no free air"
  keeps its "no". Bare "excluded" is not a trigger: in radiology it mostly means outside the field of
  view ("the costophrenic angles are excluded"); "cannot be excluded" / "not excluded" are uncertainty.
- ``PREP`` / ``POSP`` uncertainty forward / backward: "may represent", "suspicious for", "could be due
  to", "question", "rule out" (an order: hypothetical, not negated), "cannot exclude" / "cannot be
  excluded", "not ruled out". A hedge of evidence that a negation leads to is negated instead: "no
  opacity to suggest pneumonia" negates the pneumonia (not across a comma).
- ``UNC`` uncertainty forward, backward when nothing follows: "possible", "likely", "suspected",
  "questionable", "borderline" ("possible pneumonia", "pneumonia is suspected").
- ``VS`` uncertainty on both sides, only up to a comma, "and" or "with": "versus", "vs." ("cardiomegaly
  and effusion versus pleural thickening": the effusion and the thickening).
- ``PROB`` probable negation, negated *and* uncertain: "unlikely" (either way, like ``NEG``), "no
  definite", "no convincing", "no clear evidence of", "unlikely to represent", "not definitely seen".
  pyConText has a separate "probable negated existence" category for these; our two flags express it
  without a third state. So "no definite pneumothorax" is negated and uncertain.
- ``PSEU`` pseudo-triggers: look like triggers, are not, open no scope but end other scopes: "no change",
  "no interval change", "no increase", "not only", "not necessarily", "not well visualized", "if
  possible", "gram negative", "without difficulty" (on NegEx's pseudo list: "inserted without
  difficulty" negates nothing). "not certain whether", also on that list, is uncertainty here (``PREP``).
- "or" is not a trigger: "pneumonia or atelectasis" asserts nothing, but a scope runs across it
  ("possible pneumonia or atelectasis", "no pneumothorax or effusion").
- ``CONJ`` termination, both directions: "but", "however", "although", "though", "except", "aside from",
  "apart from", "yet", "whereas", ";" and a sentence-final period. Forward only: "which", "who",
  "still", "secondary to", "due to", "cause of", "source of", "reason for", "etiology of", "origin of"
  and a comma followed by a word that starts a positive finding (", stable ...", ", mild ...").
  ("The effusion, which was seen before, has resolved" must keep its backward scope.)

Scopes. A forward scope runs from the trigger to the next trigger, termination term, or clause verb
("is", "are", "was", "has", "there", "persists", ...), so it crosses coordination lists ("no
pneumothorax, effusion or consolidation") but not a new clause ("no pneumothorax is seen and the heart
is enlarged"); after "uncertain whether" / "not certain if" the scope is the whole clause. A backward
scope runs back to the previous trigger, termination term or clause verb; auxiliaries right before the
trigger belong to it ("has been removed", "is not seen"), and when it stops at a clause verb it also
skips that clause's complement up to the next "and" or comma ("the heart is enlarged and the effusion
has resolved": only "the effusion"). A verb right after "which"/"that" is a relative clause, not a
boundary. A scope never leaves its sentence (";" and a sentence-final period end every scope).

A concept is judged by the majority of its word characters, not counting words of trigger phrases in
its span: so a quoted "No pneumothorax" is negated, and "Cardiomegaly persists, but the effusion has
resolved" as a whole is not.

Visibility: "The nodule seen on CT is not seen on the radiograph" does not negate the nodule: a backward
"not seen"-type scope stops at a sighting on another modality ("seen on CT"). A sighting on a prior
radiograph does not stop it ("the opacity seen on the prior study is not seen today" is negated).

"normal" is not a negation ("heart size is normal" asserts nothing negative about a finding), and
"non" is not a trigger ("nonspecific opacity" is a finding).
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import NamedTuple, TypeAlias


@dataclass(frozen=True)
class Assertion:
    negated: bool
    uncertain: bool


class Cue(NamedTuple):
    """A trigger or termination phrase found in a sentence (``kind``: PREN, POST, NEG, PREP, POSP, UNC, VS,
    PROB, PSEU, CONJ; ``phrase``: the phrase in lower case with single spaces)."""

    start: int
    end: int
    kind: str
    phrase: str


@dataclass(frozen=True)
class SentenceContext:
    text: str
    negated_scopes: tuple[tuple[int, int], ...]
    uncertain_scopes: tuple[tuple[int, int], ...]
    cues: tuple[Cue, ...] = field(default=(), repr=False)

    def assertion(self, start: int, end: int) -> Assertion:
        """The assertion of the concept at ``text[start:end]``: negated (uncertain) when at least half of
        its word characters lie in a negation (uncertainty) scope. Words of trigger phrases inside the span
        are not counted, so a quoted "No pneumothorax" is judged by "pneumothorax"."""
        start = max(0, start)
        end = min(len(self.text), end)
        words = [(m.start(), m.end()) for m in _WORD.finditer(self.text, start, end)]
        if self.cues:
            words = [w for w in words if not any(c.start < w[1] and w[0] < c.end for c in self.cues)]
        total = sum(e - s for s, e in words)
        if not total:
            return _DEFINITE
        negated = 2 * _covered(words, self.negated_scopes) >= total
        uncertain = 2 * _covered(words, self.uncertain_scopes) >= total
        return Assertion(negated=negated, uncertain=uncertain)


_DEFINITE = Assertion(negated=False, uncertain=False)


def _covered(words: list[tuple[int, int]], scopes: tuple[tuple[int, int], ...]) -> int:
    count = 0
    for ws, we in words:
        for ss, se in scopes:
            if ss < we and ws < se:
                count += min(we, se) - max(ws, ss)
    return count


# --------------------------------------------------------------------------------------------------
# Rules


class _Role(Enum):
    TRIGGER = "trigger"
    PSEUDO = "pseudo"
    TERM = "term"  # ends scopes in both directions
    TERM_FWD = "term_fwd"  # ends forward scopes only
    VERB = "verb"  # clause verb: ends a scope unless adjacent to the trigger
    REL = "rel"  # relative pronoun: the verb after it is not a clause boundary


class _Dir(Enum):
    FWD = "fwd"
    BWD = "bwd"
    BOTH = "both"  # both sides, up to a comma
    FWD_FIRST = "fwd_first"  # forward, or backward when nothing follows
    BWD_FIRST = "bwd_first"  # backward, or forward when nothing precedes
    BWD_IF_FINAL = "bwd_if_final"  # backward, and only at the end of a clause (else not a trigger)


@dataclass(frozen=True)
class _Rule:
    kind: str
    role: _Role
    negation: bool = False
    uncertainty: bool = False
    direction: _Dir = _Dir.FWD
    visibility: bool = False  # a "not seen"-type trigger (stopped by a sighting on another modality)
    clause: bool = False  # its forward scope is a whole clause ("whether it is ..."): verbs do not end it
    relative: bool = False  # "which", "that": the verb right after it is not a clause boundary
    evidential: bool = False  # "suggest", "suspicious for": negated when a negation leads to it


_PREN = _Rule("PREN", _Role.TRIGGER, negation=True, direction=_Dir.FWD)
_POST = _Rule("POST", _Role.TRIGGER, negation=True, direction=_Dir.BWD)
_POST_SEEN = _Rule("POST", _Role.TRIGGER, negation=True, direction=_Dir.BWD, visibility=True)
_NEG_EITHER = _Rule("NEG", _Role.TRIGGER, negation=True, direction=_Dir.BWD_FIRST)
_NEG_FINAL = _Rule("NEG", _Role.TRIGGER, negation=True, direction=_Dir.BWD_IF_FINAL)
_PREP = _Rule("PREP", _Role.TRIGGER, uncertainty=True, direction=_Dir.FWD)
_PREP_EVIDENCE = _Rule("PREP", _Role.TRIGGER, uncertainty=True, direction=_Dir.FWD, evidential=True)
_PREP_CLAUSE = _Rule("PREP", _Role.TRIGGER, uncertainty=True, direction=_Dir.FWD, clause=True)
_POSP = _Rule("POSP", _Role.TRIGGER, uncertainty=True, direction=_Dir.BWD)
_UNC_EITHER = _Rule("UNC", _Role.TRIGGER, uncertainty=True, direction=_Dir.FWD_FIRST)
_VERSUS = _Rule("VS", _Role.TRIGGER, uncertainty=True, direction=_Dir.BOTH)
_PROB_FWD = _Rule("PROB", _Role.TRIGGER, negation=True, uncertainty=True, direction=_Dir.FWD)
_PROB_SEEN = _Rule(
    "PROB", _Role.TRIGGER, negation=True, uncertainty=True, direction=_Dir.BWD, visibility=True
)
_PROB_EITHER = _Rule("PROB", _Role.TRIGGER, negation=True, uncertainty=True, direction=_Dir.BWD_FIRST)
_PSEU = _Rule("PSEU", _Role.PSEUDO)
_CONJ = _Rule("CONJ", _Role.TERM)
_CONJ_FWD = _Rule("CONJ", _Role.TERM_FWD)
_REL_FWD = _Rule("CONJ", _Role.TERM_FWD, relative=True)  # "which", "who": end forward scopes
_REL = _Rule("REL", _Role.REL, relative=True)
_VERB = _Rule("VERB", _Role.VERB)

# Phrases use a small notation, expanded at import: "(a|b)" one of, "[a|b]" optionally one of.
_VISIBLE = (
    "(seen|visualized|identified|appreciated|demonstrated|detected|evident|noted|observed|visible|apparent)"
)
_RULES: list[tuple[_Rule, list[str]]] = [
    (
        _PREN,
        [
            "no",
            "not",
            "without",
            "never",
            "neither",
            "nor",
            "(denies|denied|denying|deny)",
            "negative for",
            "(free|clear) of",
            "absence of",
            "no [radiographic|radiologic|imaging|sonographic|ct] evidence (of|for)",
            "without [radiographic] (evidence|sign|signs|findings) (of|for)",
            "no evidence to suggest",
            "nothing to suggest",
            "no (sign|signs|finding|findings|feature|features) (of|to suggest)",
            "no (finding|findings) (suggestive of|suspicious for|concerning for|worrisome for)",
            "not (suggestive of|suspicious for|concerning for|worrisome for|indicative of|consistent with)",
            "no (suspicion|concern) (of|for)",
            "no (new|acute|residual|recurrent|further|other|longer)",
            "no recurrence of",
            "[interval] (resolution|removal) of",
            "rather than",
            "ruled out for",
            "rules out",
            "(fails|failed) to (show|reveal|demonstrate)",
            "(nonvisualization|non visualization) of",
        ],
    ),
    (
        _POST_SEEN,
        [
            f"not {_VISIBLE}",
            "not (present|shown|found)",
        ],
    ),
    (_POST, [f"no longer {_VISIBLE}", "no longer (present|shown|found)", "none"]),
    (_NEG_EITHER, ["resolved", "removed", "absent", "ruled out", "gone", "cleared"]),
    (_NEG_FINAL, ["free", "negative"]),
    (
        _PROB_FWD,
        [
            "no (definite|definitive|convincing|clear|unequivocal)",
            "no (definite|definitive|convincing|clear|unequivocal) evidence (of|for)",
            "(unlikely|not likely) to (be|represent)",
        ],
    ),
    (_PROB_EITHER, ["unlikely", "not likely", "less likely", "doubtful", "improbable"]),
    (_PROB_SEEN, [f"not (definitely|definitively|clearly|convincingly) {_VISIBLE}"]),
    (
        _PREP,
        [
            "(may|might|could) (be|represent|reflect|indicate|correspond to|relate to)",
            "(may|might|could) [be] (due|secondary|related) to",
            "(possibly|probably|likely|presumably|presumed) (due|secondary|related) to",
            "possibly",
            "perhaps",
            "presumably",
            "probably",
            "(suspicion|concern) (for|of)",
            "question [of]",
            "query",
            "rule out",
            "r/o",
            "(evaluate|evaluation|eval|assess) for",
            "(cannot|can not|can't|could not|couldn't) (exclude|rule out)",
            "differential [diagnosis] (includes|include|including|considerations include)",
            "differential diagnosis",
            "ddx",
            "consider",
            "considerations include",
            "(raising|raises|raise) the possibility of",
            "possibility of",
        ],
    ),
    (
        _PREP_EVIDENCE,
        ["(suggestive of|suggests|suggesting|[to] suggest)", "(suspicious|worrisome|concerning) for"],
    ),
    (_PREP_CLAUSE, ["(not certain|uncertain|unclear|not sure) (if|whether)", "question of whether"]),
    (
        _POSP,
        [
            "(cannot|can not|can't|could not|couldn't|not) be (excluded|ruled out)",
            "not [been] (excluded|ruled out)",
            "be (excluded|ruled out)",
            "is a possibility",
        ],
    ),
    (
        _UNC_EITHER,
        [
            "(possible|probable|likely|suspected|suspect|questionable|equivocal|borderline|presumed)",
            "(presumptive|uncertain)",
        ],
    ),
    (_VERSUS, ["versus", "vs", "vs."]),
    (
        _PSEU,
        [
            "no [significant|appreciable|substantial|definite|suspicious|further] [interval] change",
            "no [significant|definite] [interval] (increase|decrease|progression)",
            "without [significant|appreciable] [interval] change",
            "(if|when|where) (possible|available)",
            "not [significantly] (changed|increased)",
            "not (only|necessarily|cause|drain|extend)",
            "not (well|adequately|optimally|fully|completely) "
            "(seen|visualized|evaluated|assessed|imaged|included|characterized)",
            "gram negative",
            "without difficulty",
        ],
    ),
    (
        _CONJ,
        [
            "but",
            "however",
            "although",
            "though",
            "except [for]",
            "(aside|apart) from",
            "yet",
            "nevertheless",
            "nonetheless",
            "whereas",
        ],
    ),
    (
        _CONJ_FWD,
        [
            "still",
            "(secondary|due) to",
            "as (the|a) [secondary|likely|possible] (cause|source|reason|etiology|origin) (of|for)",
            "(cause|causes|source|sources|reason|reasons|etiology|origin|origins) (of|for)",
            "(presents|presenting) with",
            "complains of",
        ],
    ),
    (_REL_FWD, ["which", "who", "whose"]),
    (_REL, ["that"]),
    (
        _VERB,
        [
            "(is|are|was|were|has|have|had|there)",
            "(remains|remain|remained|persists|persist|persisted)",
            "(shows|show|showed|reveals|demonstrates|appears|appear|seems|seem)",
            "(represents|represent|reflects|reflect|measures|measure|contains)",
        ],
    ),
]

#: Words that may stand between an auxiliary and its trigger ("has since been removed").
_AUX_WORDS = (
    "be|been|being|now|since|completely|entirely|largely|nearly|almost|fully|totally|also|again|"
    "subsequently|interval|then|therefore|thus"
)
#: Words after a comma that start a new, positive finding (end a forward scope).
_POSITIVE_AFTER_COMMA = (
    "stable|unchanged|persistent|persisting|mild|moderate|severe|again|redemonstrated|findings|consistent|"
    "compatible|status"
)
#: A sighting on another modality (stops a backward "not seen" scope).
_SIGHTING = re.compile(
    r"\b(?:seen|visualized|visible|identified|demonstrated|detected|evident|noted|shown|apparent)"
    r"\s+(?:on|in|by|at)\s+(?:the\s+)?(?:(?:prior|previous|recent|outside|earlier|same[\s-]day|chest|"
    r"abdominal|concurrent|contemporaneous)\s+){0,2}"
    r"(?:ct|cta|mri?|mr|ultrasound|sonography|us|pet|pet[\s-]ct|fluoroscopy|lateral|frontal|pa|ap|"
    r"cross[\s-]sectional)\b"
)


def _expand(pattern: str) -> list[str]:
    """All phrases of the notation: "(a|b) c" -> ["a c", "b c"], "[a] c" -> ["a c", "c"]."""
    pos = 0

    def sequence() -> list[str]:
        nonlocal pos
        results = [""]
        while pos < len(pattern) and pattern[pos] not in "|)]":
            char = pattern[pos]
            if char in "([":
                pos += 1
                options = alternatives()
                closer = ")" if char == "(" else "]"
                if pos >= len(pattern) or pattern[pos] != closer:
                    raise ValueError(f"unbalanced phrase pattern: {pattern!r}")
                pos += 1
                if char == "[":
                    options = [*options, ""]
                results = [r + o for r in results for o in options]
            else:
                stop = pos
                while stop < len(pattern) and pattern[stop] not in "()[]|":
                    stop += 1
                literal = pattern[pos:stop]
                pos = stop
                results = [r + literal for r in results]
        return results

    def alternatives() -> list[str]:
        nonlocal pos
        found = sequence()
        while pos < len(pattern) and pattern[pos] == "|":
            pos += 1
            found += sequence()
        return found

    phrases = alternatives()
    if pos != len(pattern):
        raise ValueError(f"unbalanced phrase pattern: {pattern!r}")
    return [" ".join(p.split()) for p in phrases if p.strip()]


def _lexicon() -> dict[str, _Rule]:
    lexicon: dict[str, _Rule] = {}
    for rule, patterns in _RULES:
        for pattern in patterns:
            for phrase in _expand(pattern.lower()):
                if "-" in phrase:
                    raise ValueError(f"write hyphens as spaces in phrases: {phrase!r}")
                previous = lexicon.setdefault(phrase, rule)
                if previous is not rule:
                    raise ValueError(f"phrase in two classes: {phrase!r}")
    return lexicon


@cache
def _phrase_rules() -> dict[str, _Rule]:
    """The lexicon, built on first use (not at import: a cold start that never verifies pays nothing)."""
    return _lexicon()


_SEP = r"[\s-]+"  # between the words of a phrase: whitespace or a hyphen ("rule-out")
_END = r"(?![\w-])"


_Trie: TypeAlias = dict[str, "_Trie"]


def _trie_pattern(phrases: list[str]) -> str:
    """One regex for all phrases, as a character trie: at a word start the engine follows one branch per
    character. Continuations are tried before a phrase's end and the word-end check comes last, so the
    longest phrase that ends at a word boundary wins ("no evidence of", not "no")."""
    trie: _Trie = {}
    for phrase in phrases:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}

    def node_pattern(node: _Trie) -> str:
        branches = []
        for char, child in sorted(node.items()):
            if char:
                piece = _SEP if char == " " else "['\u2019]" if char == "'" else re.escape(char)
                branches.append(piece + node_pattern(child))
        if not branches:
            return ""
        if len(branches) == 1:
            group = branches[0] if "" not in node else f"(?:{branches[0]})"
        else:
            group = "(?:" + "|".join(branches) + ")"
        return group + "?" if "" in node else group

    # A phrase starts at a word start that does not follow a hyphen ("gram-negative" is one phrase)
    return r"\b(?<!-)" + node_pattern(trie) + _END


@cache
def _cue_re() -> re.Pattern[str]:
    """Every trigger phrase in one regex (a character trie), compiled on first use: it is the bulk of
    this module's cost (tens of milliseconds), which a function that never verifies should not pay."""
    return re.compile(
        "(?P<w>" + _trie_pattern(list(_phrase_rules())) + ")"
        r"|(?P<p>;|\.(?=\s|$)|[!?](?=\s|$))"
        rf"|(?P<c>,)(?=\s*(?:{_POSITIVE_AFTER_COMMA}){_END})",
    )


_NORMALIZE = re.compile(r"[\s-]+")
_WORD = re.compile(r"[^\W_]+")
_ALNUM = re.compile(r"[^\W_]")
_ADJACENT = re.compile(rf"(?:\s|,)*(?:(?:{_AUX_WORDS}){_END}(?:\s|,)*)*")
_SPACE_ONLY = re.compile(r"\s*")
_COORDINATION = re.compile(r",|;|\band\b")
_VS_STOP = re.compile(r"[,;:]|\b(?:and|with)\b")  # the reach of "versus"
_PUNCTUATION = re.compile(r"[,;:]")
_FINAL = re.compile(r"\s*(?:[^\w\s-]|$)")

#: Periods that do not end a sentence: the word before them (lowercase, without the final period).
_ABBREVIATIONS = frozenset(
    {"dr", "prof", "st", "vs", "approx", "e.g", "i.e", "eg", "ie", "cf", "fig", "figs", "al", "incl"}
)
#: Abbreviations that end a sentence only before a capital letter ("etc. The ...").
_SOFT_ABBREVIATIONS = frozenset({"etc", "a.m", "p.m", "pt", "inc", "b.i.d", "t.i.d", "q.i.d"})
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]")
_WORD_BEFORE_PERIOD = re.compile(r"([A-Za-z0-9][A-Za-z0-9.]*)\.$")


def _is_abbreviation(text: str, period: int) -> bool:
    """Whether ``text[period] == "."`` belongs to an abbreviation rather than ending a sentence."""
    m = _WORD_BEFORE_PERIOD.search(text, max(0, period - 12), period + 1)
    if not m:
        return False
    word = m.group(1).lower()
    if word in _ABBREVIATIONS:
        return True
    following = text[period + 1 : period + 40].lstrip()
    starts_capital = bool(following) and following[0].isupper()
    if word in _SOFT_ABBREVIATIONS:
        return not starts_capital
    # Dotted abbreviations ("b.i.d", "q.d") unless a capital follows
    return _DOTTED.fullmatch(word) is not None and not starts_capital


# --------------------------------------------------------------------------------------------------
# Sentence analysis

_Found = tuple[int, int, _Rule, str]  # start, end, rule, phrase


def _lower(text: str) -> str:
    """``text`` in lower case, character for character (offsets stay valid)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _find_cues(text: str, lowered: str) -> list[_Found]:
    found: list[_Found] = []
    for m in _cue_re().finditer(lowered):
        group = m.lastgroup
        if group == "w":
            phrase = m.group()
            rule = _phrase_rules().get(phrase)
            if rule is None:  # line breaks, double spaces, hyphens or a typographic apostrophe inside
                phrase = _NORMALIZE.sub(" ", phrase).replace("\u2019", "'")
                rule = _phrase_rules()[phrase]
            found.append((m.start(), m.end(), rule, phrase))
        elif group == "p":
            if m.group() == "." and _is_abbreviation(text, m.start()):
                continue
            found.append((m.start(), m.end(), _CONJ, m.group()))
        else:
            found.append((m.start(), m.end(), _CONJ_FWD, ","))
    # "free"/"negative" are triggers only at the end of a clause ("pain free." but not "no free air")
    return [
        cue
        for cue in found
        if cue[2].direction is not _Dir.BWD_IF_FINAL or _FINAL.match(lowered, cue[1]) is not None
    ]


def _forward(text: str, cues: list[_Found], i: int, *, narrow: bool) -> tuple[int, int, int]:
    """The forward scope of trigger ``i`` and the index of the cue that ended it (-1: none)."""
    start = cursor = cues[i][1]
    limit = len(text)
    stop = -1
    whole_clause = cues[i][2].clause
    for j in range(i + 1, len(cues)):
        c_start, c_end, rule, _ = cues[j]
        role = rule.role
        if role is _Role.VERB:
            if whole_clause:
                continue
            if _ADJACENT.fullmatch(text, cursor, c_start):
                cursor = c_end  # "likely represents ..."
                continue
            limit, stop = c_start, j
            break
        if role is _Role.REL:
            continue
        limit, stop = c_start, j
        break
    if narrow and (m := _VS_STOP.search(text, start, limit)):
        limit, stop = m.start(), -1
    return start, limit, stop


def _backward(text: str, cues: list[_Found], i: int, *, narrow: bool) -> tuple[int, int]:
    end = cues[i][0]
    start = 0
    j = i - 1
    while j >= 0:
        c_start, c_end, rule, _ = cues[j]
        role = rule.role
        if role is _Role.VERB:
            if _ADJACENT.fullmatch(text, c_end, end):
                end = c_start  # the trigger's own auxiliary: "has been removed", "is not seen"
                j -= 1
                continue
            previous = cues[j - 1] if j > 0 else None
            if (
                previous is not None
                and previous[2].relative
                and _SPACE_ONLY.fullmatch(text, previous[1], c_start)
            ):
                j -= 1  # a relative clause ("which was seen before") is not a boundary
                continue
            start = c_end
            if m := _COORDINATION.search(text, start, end):
                start = m.end()  # skip the complement of that clause ("is enlarged and ...")
            break
        if role in (_Role.REL, _Role.TERM_FWD):
            j -= 1
            continue
        start = c_end
        break
    if cues[i][2].visibility:
        for m in _SIGHTING.finditer(text, start, end):
            start = m.end()
    if narrow:
        for m in _VS_STOP.finditer(text, start, end):
            start = m.end()
    return start, end


def _has_content(text: str, span: tuple[int, int]) -> bool:
    return _ALNUM.search(text, span[0], span[1]) is not None


def _trim(text: str, span: tuple[int, int]) -> tuple[int, int] | None:
    start, end = span
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return (start, end) if start < end else None


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def analyze(sentence: str) -> SentenceContext:
    """The negation and uncertainty scopes of one sentence (see the module docstring)."""
    text = _lower(sentence)
    cues = _find_cues(sentence, text)
    negated: list[tuple[int, int]] = []
    uncertain: list[tuple[int, int]] = []
    public: list[Cue] = []
    # "no opacity to suggest pneumonia": the hedge a negation leads to is negated, not uncertain
    carried: dict[int, _Rule] = {}
    for i, (c_start, c_end, rule, phrase) in enumerate(cues):
        if rule.role in (_Role.VERB, _Role.REL):
            continue
        public.append(Cue(c_start, c_end, rule.kind, phrase))
        if rule.role is not _Role.TRIGGER:
            continue
        direction = rule.direction
        if direction is _Dir.FWD:
            start, end, stop = _forward(text, cues, i, narrow=False)
            spans = [(start, end)]
            if (
                rule.negation
                and stop >= 0
                and cues[stop][2].evidential
                and not _PUNCTUATION.search(text, c_end, cues[stop][0])
            ):
                carried[stop] = rule
        elif direction in (_Dir.BWD, _Dir.BWD_IF_FINAL):
            spans = [_backward(text, cues, i, narrow=False)]
        elif direction is _Dir.BOTH:
            spans = [_backward(text, cues, i, narrow=True), _forward(text, cues, i, narrow=True)[:2]]
        elif direction is _Dir.FWD_FIRST:
            span = _forward(text, cues, i, narrow=False)[:2]
            if not _has_content(text, span):
                span = _backward(text, cues, i, narrow=False)
            spans = [span]
        else:  # BWD_FIRST
            span = _backward(text, cues, i, narrow=False)
            if not _has_content(text, span):
                span = _forward(text, cues, i, narrow=False)[:2]
            spans = [span]
        flags = carried.get(i, rule)
        for span in spans:
            trimmed = _trim(text, span)
            if trimmed is None:
                continue
            if flags.negation:
                negated.append(trimmed)
            if flags.uncertainty:
                uncertain.append(trimmed)
    return SentenceContext(
        text=sentence,
        negated_scopes=_merge(negated),
        uncertain_scopes=_merge(uncertain),
        cues=tuple(public),
    )


# --------------------------------------------------------------------------------------------------
# Sentences of a report

# (Each pattern starts with a character class or literal, so the engine skips ahead to candidates; the
# look-behinds come after the first character.)
_HEADING = re.compile(r"[A-Z](?<![\w-].)[A-Z0-9/&()'-]*(?:[ \t]+[A-Z0-9][A-Z0-9/&()'-]*)*:(?=\s|$)")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
_GLUED_END = re.compile(r"\.(?<=[a-z]{2}\.)(?=[A-Z][a-z])")
_LIST_MARKER = re.compile(r"(?:[-*\u2022]|\(?\d{1,2}[.)])[ \t]+")
_NEWLINE = re.compile(r"\n")
_CONTINUATION_END = re.compile(r"(?:[,(/-]|\b(?:and|or|of|the|a|an|with|without|to|for|in|on|no|not))$")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of a report as ``(start, end)`` offsets, trimmed of surrounding whitespace.

    Boundaries: ".", "!" or "?" before whitespace (not after an abbreviation such as "e.g." or "Dr.", not
    after a list number such as "1."); a blank line; a line break unless the next line continues the
    sentence (it starts in lowercase, or the line ends with a comma or a word like "and"); an upper-case
    section heading ("FINDINGS:") or a label alone on its line ("Findings:") is its own span.
    """
    cuts: set[int] = {0, len(text)}
    for m in _NEWLINE.finditer(text):
        if _line_break_is_boundary(text, m.start()):
            cuts.add(m.start())
    for m in _HEADING.finditer(text):
        if sum(ch.isalpha() for ch in m.group()) >= 2:
            cuts.add(m.start())
            cuts.add(m.end())
    for m in _GLUED_END.finditer(text):  # "effusion.Heart size ..."
        if not _is_abbreviation(text, m.start()):
            cuts.add(m.end())
    for m in _SENTENCE_END.finditer(text):
        single_period = m.group().startswith(".") and len(m.group().rstrip("\"')]")) == 1
        if single_period and (_is_abbreviation(text, m.start()) or _is_list_number(text, m.start(), cuts)):
            continue
        cuts.add(m.end())
    spans: list[tuple[int, int]] = []
    ordered = sorted(cuts)
    for start, end in itertools.pairwise(ordered):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def _line_break_is_boundary(text: str, newline: int) -> bool:
    after = newline + 1
    while after < len(text) and text[after] in " \t\r":
        after += 1
    if after >= len(text) or text[after] == "\n":
        return True  # blank line or end of text
    last = newline - 1  # the last non-space character before the line break
    while last >= 0 and text[last].isspace():
        last -= 1
    if last < 0 or text[last] in ".!?:;":
        return True
    if _LIST_MARKER.match(text, after) or (text[after].isupper() and _HEADING.match(text, after)):
        return True
    if text[after].islower():
        return False
    return _CONTINUATION_END.search(text[max(0, last - 11) : last + 1]) is None


def _is_list_number(text: str, period: int, cuts: set[int]) -> bool:
    """Whether the period ends a list number ("1. No pneumothorax"): a number of one or two digits at the
    start of a line or right after a colon or another sentence."""
    number_start = period
    while number_start > 0 and text[number_start - 1].isdigit():
        number_start -= 1
    if not 1 <= period - number_start <= 2:
        return False
    if number_start > 0 and not text[number_start - 1].isspace() and text[number_start - 1] != "(":
        return False
    before = number_start - 1
    while before >= 0 and text[before] in " \t":
        before -= 1
    return before < 0 or text[before] in "\n:.!?" or number_start in cuts


# --------------------------------------------------------------------------------------------------
# Concepts in a whole report


class ReportContext:
    """A report split into sentences, each analysed on first use (a sentence repeated word for word,
    as long reports do, is analysed once). Nothing is kept beyond the object: no report text is cached
    between reports."""

    __slots__ = ("_contexts", "_starts", "sentences", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sentences: tuple[tuple[int, int], ...] = tuple(sentence_spans(text))
        self._starts = [start for start, _ in self.sentences]
        self._contexts: dict[str, SentenceContext] = {}

    def sentence_index(self, start: int, end: int) -> int | None:
        """The sentence holding ``start`` (or, when ``start`` is between sentences, the next one that
        overlaps ``[start, end)``)."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and start < self.sentences[i][1]:
            return i
        if i + 1 < len(self.sentences) and self.sentences[i + 1][0] < max(end, start + 1):
            return i + 1
        return None

    def overlapping(self, start: int, end: int) -> range:
        """Indexes of the sentences overlapping ``[start, end)`` (an empty span: the one at ``start``)."""
        end = max(end, start + 1)
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        if first < len(self.sentences) and self.sentences[first][1] <= start:
            first += 1
        return range(first, bisect.bisect_left(self._starts, end))

    def sentence(self, index: int) -> SentenceContext:
        s, e = self.sentences[index]
        text = self.text[s:e]
        context = self._contexts.get(text)
        if context is None:
            context = self._contexts[text] = analyze(text)
        return context

    def assertion(self, start: int, end: int) -> Assertion:
        index = self.sentence_index(start, end)
        if index is None:
            return _DEFINITE
        s, e = self.sentences[index]
        return self.sentence(index).assertion(max(start, s) - s, min(end, e) - s)


def assess(text: str, start: int, end: int) -> Assertion:
    """The assertion of the concept at ``text[start:end]`` of a whole report, judged in its sentence.
    For many concepts of one report, make one :class:`ReportContext` and ask it."""
    return ReportContext(text).assertion(start, end)
