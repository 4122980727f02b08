"""The verifier: every model item is grounded, supported, not negated and carries its certainty."""

from __future__ import annotations

import pytest
from medsum.logic.negation import ReportContext
from medsum.logic.verify import (
    Tally,
    check_item,
    check_items,
    concept_words,
    same_word,
    summary_contradicts,
)
from medsum.models import Certainty, ModelItem

CXR = "FINDINGS: No pneumothorax. Possible left lower lobe pneumonia. Mild cardiomegaly."


def check(
    text: str, item: str, *quotes: str, certainty: Certainty | None = None
) -> tuple[str, Certainty | None]:
    verdict = check_item(
        ModelItem(text=item, evidence=list(quotes), certainty=certainty), ReportContext(text)
    )
    return verdict.outcome, verdict.item.certainty if verdict.item else None


def test_the_issue_example_keeps_exactly_two_items() -> None:
    # Given the model's items for a report with a negation, a hedge and a plain finding
    report = ReportContext(CXR)
    tally = Tally()
    items = [
        ModelItem(text="Pneumothorax", evidence=["No pneumothorax."], certainty=Certainty.DEFINITE),
        ModelItem(
            text="Pneumonia", evidence=["Possible left lower lobe pneumonia."], certainty=Certainty.DEFINITE
        ),
        ModelItem(text="Cardiomegaly", evidence=["Mild cardiomegaly."]),
        ModelItem(text="Pleural effusion", evidence=["Small right pleural effusion."]),
    ]
    check_items({"key_findings": items}, report, tally)
    verification = tally.verification(summary_contradicts("Mild cardiomegaly; possible pneumonia.", report))
    # Then cardiomegaly is definite, pneumonia uncertain, the others dropped, and a human should look
    kept = [(item.text, item.certainty) for item in tally.lists["key_findings"]]
    assert kept == [("Pneumonia", Certainty.UNCERTAIN), ("Cardiomegaly", Certainty.DEFINITE)]
    assert verification.dropped.negated == 1 and verification.dropped.ungrounded == 1
    assert verification.items_checked == 4 and verification.items_kept == 2
    assert verification.marked_uncertain == 1
    assert verification.needs_review is True


@pytest.mark.parametrize(
    ("text", "item", "quote", "outcome", "certainty"),
    [
        # pre-negation, post-negation, coordination
        ("No pneumothorax.", "Pneumothorax", "No pneumothorax.", "negated", None),
        ("Lungs are free of consolidation.", "Consolidation", "free of consolidation", "negated", None),
        ("Negative for pulmonary embolism.", "Pulmonary embolism", "pulmonary embolism", "negated", None),
        ("Pneumothorax is not seen.", "Pneumothorax", "Pneumothorax is not seen", "negated", None),
        ("The effusion has resolved.", "Effusion", "The effusion has resolved", "negated", None),
        (
            "The infiltrates and vascular engorgement have resolved.",
            "Vascular engorgement",
            "The infiltrates and vascular engorgement have resolved.",
            "negated",
            None,
        ),
        ("Chest tubes were removed.", "Chest tubes", "Chest tubes were removed.", "negated", None),
        # the quote leaves the negation out; the sentence still negates
        ("No pneumothorax is identified.", "Pneumothorax", "pneumothorax", "negated", None),
        # pseudo-negations are left alone
        (
            "No change in mild cardiomegaly.",
            "Mild cardiomegaly",
            "mild cardiomegaly",
            "kept",
            Certainty.DEFINITE,
        ),
        # hedges become uncertain, not dropped
        (
            "Pneumonia cannot be excluded.",
            "Pneumonia",
            "Pneumonia cannot be excluded",
            "kept",
            Certainty.UNCERTAIN,
        ),
        (
            "Findings suggestive of emphysema.",
            "Emphysema",
            "suggestive of emphysema",
            "kept",
            Certainty.UNCERTAIN,
        ),
        (
            "Atelectasis versus pneumonia.",
            "Pneumonia",
            "Atelectasis versus pneumonia",
            "kept",
            Certainty.UNCERTAIN,
        ),
        (
            "Opacity may represent atelectasis.",
            "Atelectasis",
            "may represent atelectasis",
            "kept",
            Certainty.UNCERTAIN,
        ),
        # plain findings stay definite; stable is still a finding
        (
            "Stable mild cardiomegaly.",
            "Cardiomegaly",
            "Stable mild cardiomegaly.",
            "kept",
            Certainty.DEFINITE,
        ),
        # paraphrase and re-spaced quote are fine
        ("Bibasilar   opacities.", "Bibasilar opacity", "bibasilar opacities", "kept", Certainty.DEFINITE),
        ("The heart is enlarged.", "Enlarged heart", "The heart is enlarged", "kept", Certainty.DEFINITE),
        # an item about something else than its quote
        ("Mild cardiomegaly.", "Pneumonia", "Mild cardiomegaly.", "unsupported", None),
        (
            "Left lower lobe atelectasis.",
            "Left lower lobe pneumonia",
            "Left lower lobe atelectasis",
            "unsupported",
            None,
        ),
        (
            "Small right pleural effusion.",
            "Left pleural effusion",
            "Small right pleural effusion",
            "unsupported",
            None,
        ),
        ("Lisinopril 10 mg daily.", "Lisinopril 20 mg daily", "Lisinopril 10 mg daily", "unsupported", None),
        # invented quote
        ("Mild cardiomegaly.", "Cardiomegaly", "Marked cardiomegaly with edema.", "ungrounded", None),
    ],
)
def test_item_outcomes(text: str, item: str, quote: str, outcome: str, certainty: Certainty | None) -> None:
    assert check(text, item, quote) == (outcome, certainty)


def test_a_model_hedge_is_kept_even_when_the_evidence_is_plain() -> None:
    assert check(
        "Mild cardiomegaly.", "Cardiomegaly", "Mild cardiomegaly", certainty=Certainty.UNCERTAIN
    ) == (
        "kept",
        Certainty.UNCERTAIN,
    )


def test_an_item_affirmed_in_one_quote_and_negated_in_another_is_kept() -> None:
    text = "No new effusion. Small left effusion persists."
    assert check(text, "Left effusion", "No new effusion.", "Small left effusion persists.")[0] == "kept"


def test_offsets_point_at_the_located_text_and_missing_quotes_are_counted() -> None:
    text = "IMPRESSION:  Mild   cardiomegaly.\nNo pneumothorax."
    verdict = check_item(
        ModelItem(text="Cardiomegaly", evidence=["mild cardiomegaly", "invented quote"]), ReportContext(text)
    )
    assert verdict.item is not None and verdict.quotes_not_found == 1
    span = verdict.item.evidence[0]
    assert text[span.start : span.end] == "Mild   cardiomegaly"


def test_a_region_is_searched_first_so_offsets_point_into_that_section() -> None:
    text = "Part one: mild cardiomegaly.\n\nPart two: mild cardiomegaly."
    second = text.index("Part two")
    verdict = check_item(
        ModelItem(text="Cardiomegaly", evidence=["mild cardiomegaly"]),
        ReportContext(text),
        (second, len(text)),
    )
    assert verdict.item is not None and verdict.item.evidence[0].start > second


def test_items_repeated_across_sections_are_shown_once() -> None:
    report = ReportContext(CXR)
    tally = Tally()
    item = ModelItem(text="Cardiomegaly", evidence=["Mild cardiomegaly."])
    check_items({"key_findings": [item]}, report, tally)
    check_items({"key_findings": [item]}, report, tally)
    assert len(tally.lists["key_findings"]) == 1
    verification = tally.verification(False, sections=2)
    assert verification.items_checked == 1 and verification.items_kept == 1
    assert verification.needs_review is False


@pytest.mark.parametrize(
    ("summary", "contradicts"),
    [
        ("Mild cardiomegaly and a small pneumothorax.", True),
        ("Mild cardiomegaly. No pneumothorax.", False),
        ("Mild cardiomegaly; possible left lower lobe pneumonia.", False),
        ("Pneumothorax.", True),
    ],
)
def test_summary_sentence_may_not_assert_what_the_report_negates(summary: str, contradicts: bool) -> None:
    assert summary_contradicts(summary, ReportContext(CXR)) is contradicts


def test_a_finding_negated_once_but_affirmed_elsewhere_is_not_a_contradiction() -> None:
    text = "No new effusion. Small left effusion persists."
    assert summary_contradicts("Small left effusion.", ReportContext(text)) is False


def test_word_matching_allows_inflection_not_other_words() -> None:
    assert same_word("opacities", "opacity") and same_word("enlarged", "enlargement")
    assert not same_word("pneumonia", "pneumothorax")
    assert not same_word("cardiac", "cardiomegaly")
    assert same_word("heart", "cardiac")


def test_concept_words_leave_modifiers_out() -> None:
    assert concept_words("Small left pleural effusion") == ["pleural", "effusion"]
    assert concept_words("Stable") == ["stable"]


def test_an_item_that_keeps_the_hedge_in_its_words_was_not_stated_as_definite() -> None:
    report = ReportContext(CXR)
    hedged_words = check_item(
        ModelItem(text="Possible pneumonia", evidence=["Possible left lower lobe pneumonia."]), report
    )
    plain_words = check_item(
        ModelItem(text="Pneumonia", evidence=["Possible left lower lobe pneumonia."]), report
    )
    assert hedged_words.item is not None and hedged_words.item.certainty is Certainty.UNCERTAIN
    assert hedged_words.marked_uncertain is False
    assert plain_words.item is not None and plain_words.marked_uncertain is True


def test_allergies_are_verified_like_the_other_lists() -> None:
    # Given a discharge note with one allergy, one denied and a "no known" line
    text = (
        "ALLERGIES: Penicillin - hives. Denies latex allergy.\n"
        "HOME MEDICATIONS: None.\nOther allergies: NKDA per pharmacy."
    )
    report = ReportContext(text)
    tally = Tally()
    items = [
        ModelItem(text="Penicillin (hives)", evidence=["Penicillin - hives"]),
        ModelItem(text="Latex", evidence=["Denies latex allergy"]),
        ModelItem(text="NKDA", evidence=["NKDA"]),
        ModelItem(text="Sulfa", evidence=["Sulfa drugs - rash"]),
    ]
    check_items({"allergies": items}, report, tally)
    # Then only the stated allergy is kept, with its offsets; the others are dropped and counted
    assert [item.text for item in tally.lists["allergies"]] == ["Penicillin (hives)"]
    span = tally.lists["allergies"][0].evidence[0]
    assert text[span.start : span.end] == "Penicillin - hives"
    verification = tally.verification(summary_contradicts("Penicillin allergy.", report))
    assert verification.dropped.negated == 2 and verification.dropped.ungrounded == 1
    assert verification.needs_review is True
