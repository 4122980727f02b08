"""Negation and uncertainty of clinical concepts (medsum.logic.negation). Example texts are our own."""

from __future__ import annotations

import random

import pytest
from medsum.logic import negation
from medsum.logic.negation import (
    Assertion,
    ReportContext,
    SentenceContext,
    analyze,
    assess,
    sentence_spans,
)

NEGATED = Assertion(negated=True, uncertain=False)
UNCERTAIN = Assertion(negated=False, uncertain=True)
DEFINITE = Assertion(negated=False, uncertain=False)
PROBABLY_NOT = Assertion(negated=True, uncertain=True)


def of(text: str, concept: str, occurrence: int = 0) -> Assertion:
    """The assertion of the ``occurrence``-th appearance of ``concept`` in ``text`` (via ``assess``)."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(concept, start + 1)
    return assess(text, start, start + len(concept))


def scoped(context: SentenceContext, scopes: tuple[tuple[int, int], ...]) -> list[str]:
    return [context.text[s:e] for s, e in scopes]


# --------------------------------------------------------------------------------------------------
# Pre-negation


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("No pneumothorax.", "pneumothorax"),
        ("There is no pneumothorax.", "pneumothorax"),
        ("Lungs are clear without focal consolidation.", "focal consolidation"),
        ("Negative for rib fracture.", "rib fracture"),
        ("The lungs are free of infiltrate.", "infiltrate"),
        ("The pleural spaces are clear of fluid.", "fluid"),
        ("No evidence of pneumonia.", "pneumonia"),
        ("No radiographic evidence of heart failure.", "heart failure"),
        ("No signs of volume overload.", "volume overload"),
        ("No findings to suggest aspiration.", "aspiration"),
        ("No findings suggestive of pneumonia.", "pneumonia"),
        ("Not suspicious for malignancy.", "malignancy"),
        ("Patient denies chest pain.", "chest pain"),
        ("She denied hemoptysis.", "hemoptysis"),
        ("Absence of pulmonary edema.", "pulmonary edema"),
        ("The heart is not enlarged.", "enlarged"),
        ("The patient has never had tuberculosis.", "tuberculosis"),
        ("Pneumonia has been ruled out.", "Pneumonia"),
        ("Ruled out pneumonia.", "pneumonia"),
        ("Ruled out for myocardial infarction.", "myocardial infarction"),
        ("Interval resolution of the right effusion.", "right effusion"),
        ("Interval removal of the endotracheal tube.", "endotracheal tube"),
        ("No new consolidation.", "consolidation"),
        ("No acute cardiopulmonary abnormality.", "cardiopulmonary abnormality"),
        ("No acute cardiopulmonary abnormality.", "acute cardiopulmonary abnormality"),
        ("No longer any pleural fluid.", "pleural fluid"),
        ("Neither effusion nor pneumothorax.", "effusion"),
        ("Neither effusion nor pneumothorax.", "pneumothorax"),
        ("Findings favor atelectasis rather than pneumonia.", "pneumonia"),
        ("No free air under the diaphragm.", "free air"),
        ("The study fails to demonstrate a fracture.", "fracture"),
    ],
)
def test_pre_negation(sentence: str, concept: str) -> None:
    assert of(sentence, concept) == NEGATED


def test_a_forward_scope_runs_across_a_coordination_list() -> None:
    text = "No pneumothorax, pleural effusion or focal consolidation."
    for concept in ("pneumothorax", "pleural effusion", "focal consolidation"):
        assert of(text, concept) == NEGATED
    context = analyze(text)
    assert scoped(context, context.negated_scopes) == [
        "pneumothorax, pleural effusion or focal consolidation"
    ]


@pytest.mark.parametrize(
    ("sentence", "negated", "affirmed"),
    [
        ("No effusion but there is cardiomegaly.", "effusion", "cardiomegaly"),
        ("No effusion, however cardiomegaly is present.", "effusion", "cardiomegaly"),
        ("No pneumothorax, although a small effusion is present.", "pneumothorax", "small effusion"),
        ("No consolidation except for basilar atelectasis.", "consolidation", "basilar atelectasis"),
        ("Aside from cardiomegaly, no abnormality.", "abnormality", "cardiomegaly"),
        ("No effusion; mild cardiomegaly.", "effusion", "cardiomegaly"),
        ("No pneumothorax, stable cardiomegaly.", "pneumothorax", "cardiomegaly"),
        ("No pneumothorax, mild cardiomegaly.", "pneumothorax", "cardiomegaly"),
        ("Without infiltrate, which was present before.", "infiltrate", "present before"),
        ("No pneumothorax is seen and the heart is enlarged.", "pneumothorax", "enlarged"),
        ("No focal consolidation, there is a small nodule.", "focal consolidation", "small nodule"),
        ("No pneumothorax secondary to the line placement.", "pneumothorax", "line placement"),
    ],
)
def test_a_forward_scope_ends_at_a_termination_term_or_a_new_clause(
    sentence: str, negated: str, affirmed: str
) -> None:
    assert of(sentence, negated) == NEGATED
    assert of(sentence, affirmed) == DEFINITE


def test_a_scope_never_leaves_its_sentence() -> None:
    text = "No pneumothorax. Cardiomegaly."
    assert of(text, "pneumothorax") == NEGATED
    assert of(text, "Cardiomegaly") == DEFINITE
    # Also when analyze() is given two sentences at once
    context = analyze(text)
    assert scoped(context, context.negated_scopes) == ["pneumothorax"]


# --------------------------------------------------------------------------------------------------
# Post-negation


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("Pneumothorax is not seen.", "Pneumothorax"),
        ("Pneumothorax not seen.", "Pneumothorax"),
        ("The effusion has resolved.", "effusion"),
        ("The infiltrates have resolved.", "infiltrates"),
        ("The effusion is resolved.", "effusion"),
        ("The chest tubes were removed.", "chest tubes"),
        ("The central line has been removed.", "central line"),
        ("The central line has since been removed.", "central line"),
        ("Tubes have been removed.", "Tubes"),
        ("Tube removed yesterday.", "Tube"),
        ("Resolved left pleural effusion.", "left pleural effusion"),
        ("Bowel sounds are absent.", "Bowel sounds"),
        ("Focal consolidations are not identified.", "Focal consolidations"),
        ("A pleural effusion is not visualized.", "pleural effusion"),
        ("The nodule is no longer visualized.", "nodule"),
        ("The pneumothorax is no longer present.", "pneumothorax"),
        ("Pulmonary embolism was ruled out.", "Pulmonary embolism"),
        ("Pneumonia ruled out.", "Pneumonia"),
        ("Patient is pain free.", "pain"),
        ("Blood cultures were negative.", "Blood cultures"),
        ("Effusion: none.", "Effusion"),
        ("The previously seen opacity has completely resolved.", "opacity"),
        ("The opacity seen on the prior study is not seen today.", "opacity"),
    ],
)
def test_post_negation(sentence: str, concept: str) -> None:
    assert of(sentence, concept) == NEGATED


def test_a_backward_scope_runs_across_coordination() -> None:
    text = "The infiltrates and vascular engorgement have resolved."
    assert of(text, "infiltrates") == NEGATED
    assert of(text, "vascular engorgement") == NEGATED
    text = "Pneumothorax, effusion and consolidation are not seen."
    for concept in ("Pneumothorax", "effusion", "consolidation"):
        assert of(text, concept) == NEGATED
    text = "Infiltrates, effusion and engorgement have resolved."
    for concept in ("Infiltrates", "effusion", "engorgement"):
        assert of(text, concept) == NEGATED
    text = "Endotracheal and nasogastric tubes have since been removed."
    for concept in ("Endotracheal", "nasogastric tubes"):
        assert of(text, concept) == NEGATED


@pytest.mark.parametrize(
    ("sentence", "affirmed", "negated"),
    [
        ("Cardiomegaly persists, but the effusion has resolved.", "Cardiomegaly", "effusion"),
        ("Cardiomegaly persists, however the effusion has resolved.", "Cardiomegaly", "effusion"),
        ("Cardiomegaly; the effusion has resolved.", "Cardiomegaly", "effusion"),
        ("The heart is enlarged and the effusion has resolved.", "enlarged", "effusion"),
        ("The heart is enlarged, the chest tube has been removed.", "enlarged", "chest tube"),
        ("Left effusion persists and the right effusion has resolved.", "Left effusion", "right effusion"),
    ],
)
def test_a_backward_scope_ends_at_a_termination_term_or_the_previous_clause(
    sentence: str, affirmed: str, negated: str
) -> None:
    assert of(sentence, affirmed) == DEFINITE
    assert of(sentence, negated) == NEGATED


def test_a_relative_clause_does_not_end_a_backward_scope() -> None:
    text = "The effusion, which was present before, has resolved."
    assert of(text, "effusion") == NEGATED


def test_seen_on_another_modality_is_not_negated_by_not_seen_on_the_radiograph() -> None:
    # The nodule exists (CT showed it); the radiograph only cannot show it.
    text = "The nodule seen on CT is not seen on the radiograph."
    assert of(text, "nodule") == DEFINITE
    text = "The nodule seen on the prior chest CT is not visualized on this study."
    assert of(text, "nodule") == DEFINITE
    text = "Nodule seen on prior CT, not seen on radiograph."
    assert of(text, "Nodule") == DEFINITE
    # Without the other modality it is a plain post-negation
    assert of("The nodule is not seen on the radiograph.", "nodule") == NEGATED


def test_no_longer_seen_negates_even_after_a_sighting() -> None:
    # "no longer" says it is gone, whatever showed it before
    text = "The nodule seen on CT is no longer seen."
    assert of(text, "nodule") == NEGATED


# --------------------------------------------------------------------------------------------------
# Pseudo-triggers


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("No change in mild cardiomegaly.", "cardiomegaly"),
        ("No significant change in the left effusion.", "left effusion"),
        ("No interval change in the right upper lobe nodule.", "nodule"),
        ("No significant interval change of the hilar adenopathy.", "hilar adenopathy"),
        ("No increase in the pleural effusion.", "pleural effusion"),
        ("Cardiomegaly without change.", "Cardiomegaly"),
        ("Atelectasis without significant interval change.", "Atelectasis"),
        ("The catheter was placed without difficulty.", "catheter"),
        ("Gram negative bacteremia.", "bacteremia"),
        ("Gram-negative bacteremia.", "bacteremia"),
        ("The effusion has not changed.", "effusion"),
        ("The left costophrenic angle is not well visualized.", "left costophrenic angle"),
        ("This is not necessarily pneumonia.", "pneumonia"),
        ("The costophrenic angles are excluded.", "costophrenic angles"),
    ],
)
def test_pseudo_negations_negate_nothing(sentence: str, concept: str) -> None:
    assert of(sentence, concept) == DEFINITE


def test_not_only_but_also() -> None:
    text = "Not only cardiomegaly but also effusion."
    assert of(text, "cardiomegaly") == DEFINITE
    assert of(text, "effusion") == DEFINITE


def test_a_pseudo_trigger_ends_the_scope_of_a_trigger_before_it() -> None:
    text = "No pneumothorax and no change in the cardiomegaly."
    assert of(text, "pneumothorax") == NEGATED
    assert of(text, "cardiomegaly") == DEFINITE


def test_not_certain_whether_is_uncertainty() -> None:
    assert of("It is not certain whether this is pneumonia.", "pneumonia") == UNCERTAIN


# --------------------------------------------------------------------------------------------------
# Uncertainty


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("The opacity may represent atelectasis.", "atelectasis"),
        ("The opacity could represent pneumonia.", "pneumonia"),
        ("This may be early edema.", "early edema"),
        ("The blunting could be due to a small effusion.", "small effusion"),
        ("Pneumonia cannot be excluded.", "Pneumonia"),
        ("Pneumonia can not be excluded.", "Pneumonia"),
        ("Pneumonia can't be excluded.", "Pneumonia"),
        ("Pneumonia can\u2019t be excluded.", "Pneumonia"),
        ("A small effusion cannot be ruled out.", "small effusion"),
        ("A small effusion is not excluded.", "small effusion"),
        ("Pneumonia has not been ruled out.", "Pneumonia"),
        ("Cannot exclude pneumonia.", "pneumonia"),
        ("Cannot rule out a small pneumothorax.", "small pneumothorax"),
        ("Findings suggestive of interstitial edema.", "interstitial edema"),
        ("Opacity suspicious for malignancy.", "malignancy"),
        ("Lucency concerning for pneumoperitoneum.", "pneumoperitoneum"),
        ("Questionable nodule in the right apex.", "nodule"),
        ("Possible left lower lobe pneumonia.", "left lower lobe pneumonia"),
        ("Possible left lower lobe pneumonia.", "pneumonia"),
        ("Possibly a small effusion.", "small effusion"),
        ("Probable right middle lobe pneumonia.", "pneumonia"),
        ("Likely atelectasis at the bases.", "atelectasis"),
        ("Atelectasis is likely.", "Atelectasis"),
        ("Suspected pulmonary edema.", "pulmonary edema"),
        ("Pulmonary edema is suspected.", "Pulmonary edema"),
        ("Differential diagnosis includes sarcoidosis and lymphoma.", "lymphoma"),
        ("Consider pulmonary embolism.", "pulmonary embolism"),
        ("Equivocal bowel wall thickening.", "bowel wall thickening"),
        ("Borderline cardiomegaly.", "cardiomegaly"),
        ("Rule out pneumonia.", "pneumonia"),
        ("Chest pain, r/o pneumonia.", "pneumonia"),
        ("Evaluate for pneumothorax.", "pneumothorax"),
        ("Question pneumonia.", "pneumonia"),
        ("Possible atelectasis or pneumonia.", "atelectasis"),
        ("Possible atelectasis or pneumonia.", "pneumonia"),
    ],
)
def test_uncertainty(sentence: str, concept: str) -> None:
    assert of(sentence, concept) == UNCERTAIN


def test_rule_out_is_an_order_not_a_negation() -> None:
    assert of("Rule out pneumonia.", "pneumonia") == UNCERTAIN
    assert of("Ruled out pneumonia.", "pneumonia") == NEGATED


def test_or_alone_is_not_a_hedge() -> None:
    assert of("Atelectasis or pneumonia.", "pneumonia") == DEFINITE
    assert of("No pneumothorax or effusion.", "effusion") == NEGATED


@pytest.mark.parametrize("versus", ["versus", "vs.", "vs", "VS."])
def test_both_sides_of_versus_are_uncertain(versus: str) -> None:
    text = f"Left basilar opacity, atelectasis {versus} pneumonia, and a small effusion."
    assert of(text, "atelectasis") == UNCERTAIN
    assert of(text, "pneumonia") == UNCERTAIN
    # versus reaches only to the nearest comma
    assert of(text, "Left basilar opacity") == DEFINITE
    assert of(text, "small effusion") == DEFINITE


def test_versus_does_not_reach_past_and() -> None:
    text = "Cardiomegaly and small left effusion versus pleural thickening and a rib fracture."
    assert of(text, "Cardiomegaly") == DEFINITE
    assert of(text, "small left effusion") == UNCERTAIN
    assert of(text, "pleural thickening") == UNCERTAIN
    assert of(text, "rib fracture") == DEFINITE


def test_a_hedge_ends_a_negation_scope() -> None:
    text = "No effusion, likely atelectasis at the left base."
    assert of(text, "effusion") == NEGATED
    assert of(text, "atelectasis") == UNCERTAIN


def test_the_subject_of_likely_is_definite_when_likely_has_an_object() -> None:
    text = "The opacity is likely atelectasis."
    assert of(text, "opacity") == DEFINITE
    assert of(text, "atelectasis") == UNCERTAIN


def test_a_negation_carries_over_the_evidence_hedge_it_leads_to() -> None:
    text = "There is no focal opacity to suggest pneumonia."
    assert of(text, "focal opacity") == NEGATED
    assert of(text, "pneumonia") == NEGATED
    assert of("No definite opacity to suggest pneumonia.", "pneumonia") == PROBABLY_NOT
    assert of("No mass suspicious for malignancy.", "malignancy") == NEGATED
    # Not across a comma: a new statement
    text = "No pneumothorax, suspicious for pneumonia."
    assert of(text, "pneumothorax") == NEGATED
    assert of(text, "pneumonia") == UNCERTAIN


def test_if_possible_is_not_a_hedge() -> None:
    assert of("Correlate with prior imaging of the nodule, if possible.", "nodule") == DEFINITE


# --------------------------------------------------------------------------------------------------
# Negated and uncertain at once (probable negation)


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("No definite pneumothorax.", "pneumothorax"),
        ("No convincing evidence of pneumonia.", "pneumonia"),
        ("No clear evidence of edema.", "edema"),
        ("Pneumonia is unlikely.", "Pneumonia"),
        ("Pneumonia is unlikely given the clinical history.", "Pneumonia"),
        ("Unlikely pneumonia.", "pneumonia"),
        ("The opacity is unlikely to represent pneumonia.", "pneumonia"),
        ("Malignancy is less likely.", "Malignancy"),
        ("The heart is not definitely identified.", "heart"),
    ],
)
def test_probable_negation_is_negated_and_uncertain(sentence: str, concept: str) -> None:
    assert of(sentence, concept) == PROBABLY_NOT


def test_unlikely_to_represent_leaves_the_subject_definite() -> None:
    assert of("The opacity is unlikely to represent pneumonia.", "opacity") == DEFINITE


def test_negation_then_hedge_in_one_sentence() -> None:
    text = "No evidence of pneumonia, though atelectasis cannot be excluded."
    assert of(text, "pneumonia") == NEGATED
    assert of(text, "atelectasis") == UNCERTAIN


# --------------------------------------------------------------------------------------------------
# Radiology reports


REPORT = """EXAMINATION: Chest, two views.

INDICATION: Cough and fever, rule out pneumonia.

FINDINGS: No pneumothorax. Possible left lower lobe pneumonia. Mild cardiomegaly.
Heart size is otherwise stable. Tubes have been removed.
Small right effusion; pneumonia of the right base cannot be excluded.

IMPRESSION:
1. Possible left lower lobe pneumonia.
2. No acute osseous abnormality.
"""


@pytest.mark.parametrize(
    ("concept", "occurrence", "expected"),
    [
        ("pneumonia", 0, UNCERTAIN),  # the indication: rule out
        ("pneumothorax", 0, NEGATED),
        ("left lower lobe pneumonia", 0, UNCERTAIN),
        ("Mild cardiomegaly", 0, DEFINITE),
        ("cardiomegaly", 0, DEFINITE),
        ("Heart size", 0, DEFINITE),
        ("Tubes", 0, NEGATED),
        ("Small right effusion", 0, DEFINITE),
        ("pneumonia of the right base", 0, UNCERTAIN),
        ("left lower lobe pneumonia", 1, UNCERTAIN),
        ("osseous abnormality", 0, NEGATED),
        ("Cough and fever", 0, DEFINITE),
    ],
)
def test_a_whole_report(concept: str, occurrence: int, expected: Assertion) -> None:
    assert of(REPORT, concept, occurrence) == expected


@pytest.mark.parametrize(
    ("sentence", "concept", "expected"),
    [
        ("Stable mild cardiomegaly.", "cardiomegaly", DEFINITE),
        ("Heart size is normal.", "Heart size", DEFINITE),
        ("The lungs are clear.", "lungs", DEFINITE),
        ("No acute cardiopulmonary abnormality.", "cardiopulmonary abnormality", NEGATED),
        ("Nonspecific opacity at the right base.", "opacity", DEFINITE),
        ("Nonspecific opacity at the right base.", "Nonspecific opacity", DEFINITE),
        ("Calcified nodule in the left upper lobe.", "nodule", DEFINITE),
        ("Innominate artery tortuosity.", "Innominate artery tortuosity", DEFINITE),
        ("A knot in the catheter tubing.", "catheter tubing", DEFINITE),
        ("Notable kyphosis.", "kyphosis", DEFINITE),
        ("Nothing to suggest pneumothorax.", "pneumothorax", NEGATED),
        ("Cardiomegaly without pulmonary edema.", "Cardiomegaly", DEFINITE),
        ("Cardiomegaly without pulmonary edema.", "pulmonary edema", NEGATED),
        ("Status post sternotomy, no pneumothorax.", "sternotomy", DEFINITE),
        ("Moderate hiatal hernia, unchanged.", "hiatal hernia", DEFINITE),
        ("Heart size upper limits of normal, not enlarged.", "Heart size", DEFINITE),
    ],
)
def test_radiology_sentences(sentence: str, concept: str, expected: Assertion) -> None:
    assert of(sentence, concept) == expected


def test_triggers_do_not_fire_inside_other_words() -> None:
    text = "Nodule near the innominate vein; knotted line; nonspecific haziness; another nodule."
    context = analyze(text)
    assert context.negated_scopes == ()
    assert context.uncertain_scopes == ()
    assert all(cue.kind == "CONJ" for cue in context.cues)


# --------------------------------------------------------------------------------------------------
# Matching: case, whitespace, hyphens, apostrophes


@pytest.mark.parametrize(
    ("sentence", "concept", "expected"),
    [
        ("NO PNEUMOTHORAX.", "PNEUMOTHORAX", NEGATED),
        ("no evidence   of\nconsolidation.", "consolidation", NEGATED),
        ("No\tevidence of consolidation.", "consolidation", NEGATED),
        ("PNEUMONIA CANNOT BE EXCLUDED.", "PNEUMONIA", UNCERTAIN),
        ("Rule-out pneumonia.", "pneumonia", UNCERTAIN),
        ("Pneumonia, ruled-out.", "Pneumonia", NEGATED),
        ("Cannot be ex-cluded pneumonia", "pneumonia", DEFINITE),  # a hyphen inside a word is no match
        ("Rule -- out pneumonia.", "pneumonia", UNCERTAIN),
    ],
)
def test_matching_is_case_insensitive_and_tolerates_whitespace_and_hyphens(
    sentence: str, concept: str, expected: Assertion
) -> None:
    assert of(sentence, concept) == expected


def test_offsets_survive_characters_whose_lower_case_is_longer() -> None:
    # "İ".lower() is two characters; the scopes must still index the original text
    text = "İİ: no pneumothorax."
    context = analyze(text)
    assert scoped(context, context.negated_scopes) == ["pneumothorax"]


# --------------------------------------------------------------------------------------------------
# The API


def test_analyze_returns_scopes_as_character_spans_of_the_sentence() -> None:
    sentence = "No effusion but possible pneumonia."
    context = analyze(sentence)
    assert context.text == sentence
    assert context.negated_scopes == ((3, 11),)
    assert scoped(context, context.uncertain_scopes) == ["pneumonia"]
    assert [(cue.kind, cue.phrase) for cue in context.cues] == [
        ("PREN", "no"),
        ("CONJ", "but"),
        ("UNC", "possible"),
        ("CONJ", "."),
    ]
    assert context.assertion(3, 11) == NEGATED
    assert context.assertion(25, 34) == UNCERTAIN


def test_a_span_that_includes_its_trigger_is_judged_by_its_other_words() -> None:
    sentence = "No pneumothorax. Pneumonia cannot be excluded."
    context = analyze(sentence)
    assert context.assertion(0, 15) == NEGATED  # "No pneumothorax"
    assert context.assertion(17, 45) == UNCERTAIN  # "Pneumonia cannot be excluded"
    assert context.assertion(0, 2) == DEFINITE  # "No" alone: nothing to judge


def test_a_span_mostly_outside_a_scope_is_not_negated() -> None:
    sentence = "Cardiomegaly persists, but the effusion has resolved."
    context = analyze(sentence)
    assert context.assertion(0, len(sentence)) == DEFINITE
    effusion = sentence.index("effusion")
    assert context.assertion(effusion, effusion + 8) == NEGATED


def test_assertion_clamps_the_span_to_the_sentence() -> None:
    context = analyze("No pneumothorax.")
    assert context.assertion(-5, 100) == NEGATED
    assert context.assertion(10, 5) == DEFINITE


def test_assess_finds_the_sentence_of_the_span() -> None:
    text = "Possible pneumonia.  \n\n No pneumothorax."
    assert of(text, "pneumonia") == UNCERTAIN
    assert of(text, "pneumothorax") == NEGATED
    # A span starting in the whitespace between sentences belongs to the next sentence
    start = text.index("  \n")
    assert assess(text, start, text.index("pneumothorax") + len("pneumothorax")) == NEGATED
    # Outside every sentence, or in an empty text: definite
    assert assess("   ", 0, 2) == DEFINITE
    assert assess("", 0, 0) == DEFINITE
    assert assess(text, len(text) + 5, len(text) + 9) == DEFINITE


def test_a_report_context_analyses_each_distinct_sentence_once() -> None:
    text = "No pneumothorax. Possible pneumonia. No pneumothorax."
    report = ReportContext(text)
    first = report.sentence(0)
    assert report.sentence(0) is first
    assert report.sentence(2) is first  # the same words: analysed once
    assert report.sentences == ((0, 16), (17, 36), (37, 53))
    assert report.assertion(text.index("pneumonia"), text.index("pneumonia") + 9) == UNCERTAIN


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 2, [0]),  # inside the first sentence
        (10, 25, [0, 1]),  # across a boundary
        (16, 17, []),  # the space between two sentences
        (17, 17, [1]),  # an empty span at a sentence start
        (40, 200, [2]),  # past the end of the text
    ],
)
def test_overlapping_sentences(start: int, end: int, expected: list[int]) -> None:
    report = ReportContext("No pneumothorax. Possible pneumonia. No pneumothorax.")
    assert list(report.overlapping(start, end)) == expected


def test_empty_and_trigger_free_sentences() -> None:
    assert analyze("") == SentenceContext(text="", negated_scopes=(), uncertain_scopes=())
    context = analyze("Mild cardiomegaly")
    assert context.negated_scopes == context.uncertain_scopes == ()
    assert context.assertion(0, 17) == DEFINITE


# --------------------------------------------------------------------------------------------------
# Sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_sentences_of_a_radiology_report() -> None:
    assert sentences("FINDINGS: No pneumothorax. Possible LLL pneumonia.") == [
        "FINDINGS:",
        "No pneumothorax.",
        "Possible LLL pneumonia.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nodule measures 1.5 cm. No effusion.", ["Nodule measures 1.5 cm.", "No effusion."]),
        ("Seen by Dr. Jones today. No effusion.", ["Seen by Dr. Jones today.", "No effusion."]),
        (
            "Small opacities, e.g. atelectasis, are seen. No effusion.",
            ["Small opacities, e.g. atelectasis, are seen.", "No effusion."],
        ),
        ("Atelectasis vs. pneumonia. No effusion.", ["Atelectasis vs. pneumonia.", "No effusion."]),
        ("Is there an effusion? No. Heart normal!", ["Is there an effusion?", "No.", "Heart normal!"]),
        ("No effusion.. Heart normal.", ["No effusion..", "Heart normal."]),
        ("No effusion.Heart normal.", ["No effusion.", "Heart normal."]),
        ("Wires etc. are seen. Next.", ["Wires etc. are seen.", "Next."]),
        ("Imaged at 3 p.m. today.", ["Imaged at 3 p.m. today."]),
        (
            "IMPRESSION:\n1. No pneumothorax.\n2. Possible pneumonia.",
            ["IMPRESSION:", "1. No pneumothorax.", "2. Possible pneumonia."],
        ),
        (
            "IMPRESSION: 1. No pneumothorax. 2. Stable 1.2 cm nodule.",
            ["IMPRESSION:", "1. No pneumothorax.", "2. Stable 1.2 cm nodule."],
        ),
        ("Lungs clear\nHeart normal", ["Lungs clear", "Heart normal"]),
        ("No pneumothorax or\neffusion.", ["No pneumothorax or\neffusion."]),
        ("No pneumothorax,\nEffusion or consolidation.", ["No pneumothorax,\nEffusion or consolidation."]),
        ("Para one.\n\nPara two", ["Para one.", "Para two"]),
        ("- No effusion\n- Mild cardiomegaly", ["- No effusion", "- Mild cardiomegaly"]),
        ("Findings:\nNo effusion", ["Findings:", "No effusion"]),
        ("COMPARISON: None. FINDINGS: Clear.", ["COMPARISON:", "None.", "FINDINGS:", "Clear."]),
        ("Effusion: none.", ["Effusion: none."]),
        ("   ", []),
        ("", []),
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_sentence_spans_are_trimmed_offsets_into_the_text() -> None:
    text = "  No effusion.  \n  Possible pneumonia.  "
    assert sentence_spans(text) == [(2, 14), (19, 38)]


# --------------------------------------------------------------------------------------------------
# The phrase table


def test_phrase_notation_expands_alternatives_and_options() -> None:
    assert negation._expand("(a|b) c") == ["a c", "b c"]
    assert negation._expand("[a|b] c") == ["a c", "b c", "c"]
    assert negation._expand("no [x] (y|z w)") == ["no x y", "no x z w", "no y", "no z w"]
    with pytest.raises(ValueError, match="unbalanced"):
        negation._expand("(a|b")


def test_every_phrase_has_one_class_and_is_found_as_itself() -> None:
    lexicon = negation._lexicon()
    assert lexicon["no"].kind == "PREN"
    assert lexicon["no change"].kind == "PSEU"
    assert lexicon["cannot be excluded"].kind == "POSP"
    for phrase, rule in lexicon.items():
        cues = negation._find_cues(phrase, phrase)
        assert [(c[0], c[1], c[2]) for c in cues] == [(0, len(phrase), rule)], phrase


def test_any_mix_of_phrases_and_punctuation_is_analysed_within_bounds() -> None:
    rng = random.Random(0)
    phrases = list(negation._lexicon())
    fillers = ["pneumonia", "effusion", ",", ".", ";", "-", "  ", "\n", "1.5", "e.g.", "\u2019", "XXXX", ":"]
    for _ in range(500):
        words = [rng.choice(phrases if rng.random() < 0.5 else fillers) for _ in range(rng.randint(0, 14))]
        text = " ".join(words)
        text = text.upper() if rng.random() < 0.2 else text
        context = analyze(text)
        for start, end in context.negated_scopes + context.uncertain_scopes:
            assert 0 <= start < end <= len(text)
        for start, end in sentence_spans(text):
            assert 0 <= start < end <= len(text)
            assess(text, start, end)
