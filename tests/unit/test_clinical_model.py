"""Specs for the local extractive clinical model (pure functions, no sockets, no files).

All reports here are synthetic and written for these tests.
"""

from __future__ import annotations

import itertools
import random

import pytest
from medsum.models import ModelSummary
from medsum.prompting import extract_report
from medsum_local.clinical_model import (
    NO_ACUTE_ABNORMALITY,
    Item,
    ModelOutput,
    SectionKind,
    negated_spans,
    split_sections,
    split_sentences,
    summarize_prompt,
    summarize_report,
)

# --------------------------------------------------------------------------------------------------
# Synthetic reports
# --------------------------------------------------------------------------------------------------
RADIOLOGY_ABNORMAL = """EXAMINATION: PA and lateral views of the chest.

INDICATION: XXXX-year-old male with cough and fever, rule out pneumonia.

COMPARISON: Radiograph from XXXX.

FINDINGS: The heart is mildly enlarged. There is a focal consolidation in the right lower lobe.
No pneumothorax. There is no focal consolidation, pneumothorax, or pleural effusion on the left.
The mediastinal contours are within normal limits. Osseous structures are unremarkable.

IMPRESSION: 1. Right lower lobe consolidation, consistent with pneumonia. 2. Mild cardiomegaly.
3. Follow-up radiograph in 6 weeks is recommended to document resolution.
"""

RADIOLOGY_NORMAL = """FINDINGS:
The lungs are clear. No focal consolidation, pneumothorax, or pleural effusion. Heart size is normal.
The cardiomediastinal silhouette is within normal limits. Visualized osseous structures are unremarkable.

IMPRESSION:
No acute cardiopulmonary abnormality.
"""

DISCHARGE = """DISCHARGE SUMMARY

ADMISSION DIAGNOSIS: Community-acquired pneumonia.

HISTORY OF PRESENT ILLNESS: 67-year-old man with diabetes presented with fever, productive cough and
dyspnea. He denies chest pain.

HOSPITAL COURSE: Chest radiograph showed right lower lobe consolidation. Blood cultures were
negative. He was treated with ceftriaxone 1 g IV daily with steady improvement.

DISCHARGE DIAGNOSES:
1. Right lower lobe pneumonia, improving.
2. Type 2 diabetes mellitus.

DISCHARGE MEDICATIONS:
1. Amoxicillin-clavulanate 875 mg PO BID for 5 days.
2. Metformin 500 mg PO twice daily.
3. Acetaminophen 650 mg every 6 hours as needed for fever.

ALLERGIES: Penicillin causes mild rash.

FOLLOW-UP:
Follow up with primary care in 1 week.
Repeat chest radiograph in 6 weeks to document resolution.
Return if fever recurs or breathing worsens.
"""

PATHOLOGY = """SURGICAL PATHOLOGY REPORT

SPECIMEN: Left breast, core needle biopsy.

GROSS DESCRIPTION: Three tan-white cores measuring 1.2 cm in aggregate.

MICROSCOPIC DESCRIPTION: Sections show infiltrating nests of atypical ductal epithelial cells.

FINAL DIAGNOSIS:
Left breast, core biopsy: Invasive ductal carcinoma, grade 2. Negative for lymphovascular invasion.

COMMENT: Results were discussed with Dr. Rivera on the day of sign-out.
"""

PROGRESS_NOTE = """Progress Note

Subjective: Patient reports improved breathing. Denies fever or chest pain.

Objective: Scattered expiratory wheezes. No leg edema.

Assessment and Plan:
1. COPD exacerbation - improving; continue prednisone 40 mg daily, follow up in 2 weeks.
2. Hypertension - stable, continue lisinopril 10 mg daily.
3. Consider pulmonary function testing as an outpatient.
"""

INLINE_HEADERS = (
    "EXAM: Chest, two views. INDICATION: Cough. FINDINGS: Mild cardiomegaly. Small left pleural effusion. "
    "No pneumothorax. IMPRESSION: Cardiomegaly with small left effusion. Recommend follow-up radiograph."
)

ALL_REPORTS = {
    "radiology_abnormal": RADIOLOGY_ABNORMAL,
    "radiology_normal": RADIOLOGY_NORMAL,
    "discharge": DISCHARGE,
    "pathology": PATHOLOGY,
    "progress_note": PROGRESS_NOTE,
    "inline_headers": INLINE_HEADERS,
    "no_headers": "Mild cardiomegaly. No pneumothorax. Small left effusion.",
    "masked": "FINDINGS: XXXX XXXX. The XXXX are intact. XXXX opacity in the XXXX base.\nIMPRESSION: XXXX.",
    "single_word": "Normal.",
}


def quotes(output: ModelOutput) -> list[str]:
    lists = (
        output["key_findings"],
        output["diagnoses"],
        output["medications"],
        output["follow_up"],
        output["allergies"],
    )
    return [quote for items in lists for item in items for quote in item["evidence"]]


def texts(items: list[Item]) -> str:
    return " | ".join(item["text"] for item in items)


def finding_text(output: ModelOutput) -> str:
    """Everything that key_findings says, text and quotes, lower-cased."""
    return " ".join(
        [item["text"] for item in output["key_findings"]]
        + [quote for item in output["key_findings"] for quote in item["evidence"]]
    ).lower()


# --------------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALL_REPORTS))
def test_every_evidence_quote_is_an_exact_substring(name: str) -> None:
    # Given a report
    report = ALL_REPORTS[name]
    # When it is summarized
    output = summarize_report(report)
    # Then every quote can be located with str.find, as the worker does
    for quote in quotes(output):
        assert quote
        assert report.find(quote) >= 0, quote


@pytest.mark.parametrize("name", sorted(ALL_REPORTS))
def test_output_validates_against_the_worker_model(name: str) -> None:
    output = summarize_report(ALL_REPORTS[name])

    parsed = ModelSummary.model_validate(output)

    assert parsed.summary
    assert set(output) == {"summary", "key_findings", "diagnoses", "medications", "follow_up", "allergies"}


def test_summary_has_one_to_three_sentences() -> None:
    for report in ALL_REPORTS.values():
        summary = summarize_report(report)["summary"]
        assert summary.endswith(".")
        assert 1 <= summary.count(". ") + 1 <= 3, summary


def test_quotes_stay_substrings_when_sentences_are_shuffled() -> None:
    # Given many reports assembled from a pool of statements, in varying order and layout
    pool = [
        "No pneumothorax.",
        "Mild cardiomegaly.",
        "There is no focal consolidation, pneumothorax, or pleural effusion.",
        "Small left pleural effusion.",
        "The lungs are clear.",
        "Calcified granuloma in the right upper lobe.",
        "Degenerative changes of the thoracic spine.",
        "XXXX opacity projects over the left base.",
        "1. Stable cardiomegaly. 2. No acute disease.",
        "Recommend CT for further characterization.",
        "Metoprolol 25 mg BID.",
    ]
    rng = random.Random(20261126)
    for _ in range(200):
        statements = rng.sample(pool, k=rng.randint(1, len(pool)))
        separator = rng.choice([" ", "\n", "\n\n", "  "])
        findings, impression = statements[: len(statements) // 2], statements[len(statements) // 2 :]
        report = f"FINDINGS:{separator}{separator.join(findings)}\nIMPRESSION: {' '.join(impression)}"
        # When summarized
        output = summarize_report(report)
        # Then quotes are substrings and the contract holds
        assert all(quote in report for quote in quotes(output))
        ModelSummary.model_validate(output)


def test_is_deterministic() -> None:
    assert summarize_report(DISCHARGE) == summarize_report(DISCHARGE)


def _word(number: int) -> str:
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[digit]
        if not number:
            return "zq" + letters + "x"


def test_lists_stay_within_the_worker_limits() -> None:
    # Given far more distinct abnormal statements than the worker accepts, and many near-duplicates
    distinct = " ".join(
        f"Opacity near {_word(3 * i)} {_word(3 * i + 1)} {_word(3 * i + 2)}." for i in range(120)
    )
    repeated = " ".join(f"Nodule number {i} in the right lung." for i in range(30))

    output = summarize_report(f"FINDINGS: {repeated} {distinct}")

    # Then near-duplicates share one item (10 quotes at most) and the list stops at 50
    assert len(output["key_findings"]) == 50
    assert len(output["key_findings"][0]["evidence"]) == 10
    ModelSummary.model_validate(output)


@pytest.mark.parametrize(
    "report",
    [
        "FINDINGS: " + ", ".join(["no effusion but mild cardiomegaly"] * 2_800),
        "FINDINGS: " + ", ".join(["effusion is not seen"] * 4_500),
        "FINDINGS: " + ". ".join(f"Small nodule number {i}" for i in range(6_000)),
    ],
    ids=["negations-and-terminators", "post-negations", "many-sentences"],
)
def test_maximum_size_adversarial_reports_are_handled(report: str) -> None:
    # Negation scopes and sentence ends are looked up by bisection, so 100,000 characters in one
    # sentence finish in well under a second instead of minutes (the suite's timeout guards this).
    report = report[:100_000]

    output = summarize_report(report)

    assert all(quote in report for quote in quotes(output))
    ModelSummary.model_validate(output)


# --------------------------------------------------------------------------------------------------
# Sections and sentences
# --------------------------------------------------------------------------------------------------
def test_sections_on_their_own_line_and_inline() -> None:
    kinds = [section.kind for section in split_sections(INLINE_HEADERS)]
    assert kinds == [SectionKind.TECHNIQUE, SectionKind.HISTORY, SectionKind.FINDINGS, SectionKind.IMPRESSION]

    sections = split_sections(DISCHARGE)
    by_header = {section.header: section.kind for section in sections}
    assert by_header["ADMISSION DIAGNOSIS"] is SectionKind.DIAGNOSIS
    assert by_header["HISTORY OF PRESENT ILLNESS"] is SectionKind.HISTORY
    assert by_header["DISCHARGE MEDICATIONS"] is SectionKind.MEDICATIONS
    assert by_header["FOLLOW-UP"] is SectionKind.FOLLOW_UP
    assert by_header["ALLERGIES"] is SectionKind.ALLERGIES
    assert sections[0].kind is SectionKind.PREAMBLE


def test_headers_are_case_insensitive_and_bodies_exclude_them() -> None:
    report = "Findings: Mild cardiomegaly.\nImpression: Cardiomegaly.\nASSESSMENT AND PLAN:\n1. CHF."

    sections = split_sections(report)

    assert [s.kind for s in sections] == [
        SectionKind.FINDINGS,
        SectionKind.IMPRESSION,
        SectionKind.ASSESSMENT_PLAN,
    ]
    assert report[sections[0].start : sections[0].end].strip() == "Mild cardiomegaly."


def test_header_alone_on_its_line_without_colon() -> None:
    report = "FINDINGS\nSmall right effusion.\n\nIMPRESSION\nSmall effusion."

    assert [s.kind for s in split_sections(report)] == [SectionKind.FINDINGS, SectionKind.IMPRESSION]


def test_unknown_upper_case_subheading_stays_in_its_section() -> None:
    report = "FINDINGS:\nLUNGS: Clear.\nPLEURA: No pneumothorax or effusion.\nHEART: Mildly enlarged.\n"

    output = summarize_report(report)

    assert {s.kind for s in split_sections(report)} == {SectionKind.FINDINGS}
    assert texts(output["key_findings"]) == "HEART: Mildly enlarged"


def test_mask_tokens_are_not_headers() -> None:
    report = "XXXX: XXXX.\nFINDINGS: Small effusion."

    assert [s.kind for s in split_sections(report)] == [SectionKind.PREAMBLE, SectionKind.FINDINGS]


def test_sentences_keep_offsets_and_drop_enumerators() -> None:
    report = "IMPRESSION: 1. Stable cardiomegaly. 2. No acute disease. Discussed with Dr. Lee at 2.5 hours."

    sentences = split_sentences(report)

    assert [report[s.start : s.end] for s in sentences] == [
        "Stable cardiomegaly.",
        "No acute disease.",
        "Discussed with Dr. Lee at 2.5 hours.",
    ]
    assert all(s.section is SectionKind.IMPRESSION for s in sentences)


def test_wrapped_lines_are_one_sentence_but_list_lines_are_not() -> None:
    report = (
        "HOSPITAL COURSE: He was treated with antibiotics and improved steadily over the\n"
        "following three days.\n"
        "DISCHARGE MEDICATIONS:\nAspirin 81 mg daily\nAtorvastatin 40 mg nightly\n"
    )

    sentences = [report[s.start : s.end] for s in split_sentences(report)]

    assert sentences[0].startswith("He was treated") and sentences[0].endswith("three days.")
    assert sentences[1:] == ["Aspirin 81 mg daily", "Atorvastatin 40 mg nightly"]


# --------------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement",
    [
        "No pneumothorax.",
        "There is no pneumothorax.",
        "No focal consolidation, pneumothorax, or pleural effusion.",
        "There is no focal consolidation, pneumothorax or large pleural effusion.",
        "The lungs are clear without evidence of pneumothorax.",
        "Lungs are clear of focal airspace disease, pneumothorax, or pleural effusion.",
        "Negative for pneumothorax.",
        "Pneumothorax is not seen.",
        "The previously seen pneumothorax is no longer visualized.",
        "The small pneumothorax has resolved.",
        "Free of pneumothorax.",
        "No evidence of pneumothorax or effusion.",
        "Pneumothorax: none.",
    ],
)
def test_negated_pneumothorax_is_never_a_finding(statement: str) -> None:
    # Given a negated mention, alongside a positive finding so there is something to report
    report = f"FINDINGS: {statement} Mild cardiomegaly.\nIMPRESSION: {statement} Mild cardiomegaly."

    output = summarize_report(report)

    assert "pneumothora" not in finding_text(output)
    assert "pneumothora" not in " ".join(item["text"] for item in output["diagnoses"]).lower()
    assert texts(output["key_findings"]) == "Mild cardiomegaly"


@pytest.mark.parametrize(
    "statement",
    [
        "The lungs are clear.",
        "The cardiomediastinal silhouette is unremarkable.",
        "Heart size and pulmonary vascularity are within normal limits.",
        "Heart size, mediastinal contours, and pulmonary vasculature are normal.",
        "The heart is not enlarged.",
        "Negative for malignancy.",
        "No acute cardiopulmonary abnormality.",
        "Osseous structures are intact.",
        "Frontal and lateral views of the chest were obtained.",
        "Trachea is midline.",
    ],
)
def test_normal_statements_are_not_findings(statement: str) -> None:
    output = summarize_report(f"FINDINGS: {statement}\nIMPRESSION: {statement}")

    assert output["key_findings"] == []
    assert output["diagnoses"] == []
    assert output["summary"] == NO_ACUTE_ABNORMALITY


def test_negation_scope_ends_at_but() -> None:
    output = summarize_report("FINDINGS: No pneumothorax, but there is a small left pleural effusion.")

    assert texts(output["key_findings"]) == "A small left pleural effusion"


def test_pseudo_negations_keep_the_finding() -> None:
    output = summarize_report(
        "FINDINGS: No change in the moderate cardiomegaly. Pneumonia cannot be excluded."
    )

    found = finding_text(output)
    assert "cardiomegaly" in found
    assert "pneumonia cannot be excluded" in found


def test_positive_part_before_a_negation_is_kept() -> None:
    output = summarize_report("FINDINGS: Hyperexpanded lungs without focal consolidation or pneumothorax.")

    assert texts(output["key_findings"]) == "Hyperexpanded lungs"


def test_negated_spans_cover_the_whole_list() -> None:
    sentence = "Specifically, no evidence of focal consolidation, pneumothorax, or pleural effusion."

    spans = negated_spans(sentence)

    covered = "".join(sentence[start:end] for start, end in spans)
    assert "pneumothorax" in covered and "pleural effusion" in covered
    assert "Specifically" not in covered


# --------------------------------------------------------------------------------------------------
# Extraction by report type
# --------------------------------------------------------------------------------------------------
def test_radiology_findings_diagnoses_and_follow_up() -> None:
    output = summarize_report(RADIOLOGY_ABNORMAL)

    found = finding_text(output)
    assert "consolidation in the right lower lobe" in found
    assert "mildly enlarged" in found
    assert "pneumothora" not in found and "effusion" not in found
    assert "indication" not in found and "cough" not in found  # history is not a finding
    diagnoses = [item["text"] for item in output["diagnoses"]]
    assert diagnoses == ["Pneumonia", "Mild cardiomegaly"]
    assert [item["text"] for item in output["follow_up"]] == [
        "Follow-up radiograph in 6 weeks is recommended to document resolution"
    ]
    assert output["summary"].startswith("Right lower lobe consolidation, consistent with pneumonia.")


def test_normal_report_says_no_acute_abnormality() -> None:
    output = summarize_report(RADIOLOGY_NORMAL)

    assert output == ModelOutput(
        summary=NO_ACUTE_ABNORMALITY,
        key_findings=[],
        diagnoses=[],
        medications=[],
        follow_up=[],
        allergies=[],
    )


def test_discharge_summary_medications() -> None:
    output = summarize_report(DISCHARGE)

    medications = [item["text"] for item in output["medications"]]
    assert medications == [
        "He was treated with ceftriaxone 1 g IV daily with steady improvement",
        "Amoxicillin-clavulanate 875 mg PO BID for 5 days",
        "Metformin 500 mg PO twice daily",
        "Acetaminophen 650 mg every 6 hours as needed for fever",
    ]
    assert not any("penicillin" in m.lower() for m in medications)  # allergies are not medications
    assert output["medications"][1]["evidence"] == ["Amoxicillin-clavulanate 875 mg PO BID for 5 days"]


def test_discharge_summary_follow_up_diagnoses_and_summary() -> None:
    output = summarize_report(DISCHARGE)

    assert [item["text"] for item in output["follow_up"]] == [
        "Follow up with primary care in 1 week",
        "Repeat chest radiograph in 6 weeks to document resolution",
        "Return if fever recurs or breathing worsens",
    ]
    assert [item["text"] for item in output["diagnoses"]] == [
        "Community-acquired pneumonia",
        "Right lower lobe pneumonia",
        "Type 2 diabetes mellitus",
    ]
    assert "chest pain" not in finding_text(output)  # denied, and in the history
    assert output["summary"] == (
        "Diagnoses: community-acquired pneumonia; right lower lobe pneumonia; type 2 diabetes mellitus. "
        "Medications: amoxicillin-clavulanate, metformin, acetaminophen. "
        "Follow-up: follow up with primary care in 1 week."
    )


def test_progress_note_assessment_and_plan() -> None:
    output = summarize_report(PROGRESS_NOTE)

    assert [item["text"] for item in output["diagnoses"]] == ["COPD exacerbation", "Hypertension"]
    assert [item["text"] for item in output["medications"]] == [
        "Continue prednisone 40 mg daily",
        "Continue lisinopril 10 mg daily",
    ]
    assert [item["text"] for item in output["follow_up"]] == [
        "Follow up in 2 weeks",
        "Consider pulmonary function testing as an outpatient",
    ]
    assert "edema" not in finding_text(output)


def test_pathology_diagnosis() -> None:
    output = summarize_report(PATHOLOGY)

    assert [item["text"] for item in output["diagnoses"]] == ["Invasive ductal carcinoma"]
    assert "lymphovascular" not in finding_text(output)
    assert "surgical pathology report" not in finding_text(output)
    assert output["summary"] == "Diagnoses: invasive ductal carcinoma."


def test_negated_medication_is_skipped() -> None:
    output = summarize_report("PLAN: Patient is not on aspirin 81 mg daily. Start apixaban 5 mg BID.")

    assert [item["text"] for item in output["medications"]] == ["Start apixaban 5 mg BID"]


def test_impression_drives_the_summary_and_follow_up_is_not_a_finding() -> None:
    output = summarize_report(INLINE_HEADERS)

    assert output["summary"] == (
        "Cardiomegaly with small left effusion. Follow-up: recommend follow-up radiograph."
    )
    assert "recommend" not in finding_text(output)


def test_findings_without_impression_are_summarized() -> None:
    output = summarize_report("There is no pneumothorax. Mild cardiomegaly.")

    assert output["summary"] == "Findings include mild cardiomegaly."


# --------------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------------
def test_summarize_prompt_reads_the_report_between_tags() -> None:
    user = f"Summarize the report below as JSON.\n<report>\n{RADIOLOGY_ABNORMAL}\n</report>\nNo prose."

    assert summarize_prompt("You are a careful clinician.", user) == summarize_report(RADIOLOGY_ABNORMAL)


def test_summarize_prompt_falls_back_to_the_whole_message() -> None:
    assert summarize_prompt("", RADIOLOGY_NORMAL) == summarize_report(RADIOLOGY_NORMAL)


def test_repair_request_gets_a_fresh_valid_summary() -> None:
    # Given a repair prompt quoting the invalid previous reply (which itself mentions "report")
    user = (
        "Your previous reply was not valid JSON. Return only the JSON object.\n"
        '<previous_reply>{"summary": "Pneumothorax", "key_findings": [</previous_reply>\n'
        f"<report>{DISCHARGE}</report>"
    )

    output = summarize_prompt("system", user)

    assert output == summarize_report(DISCHARGE)
    assert all(quote in DISCHARGE for quote in quotes(output))


def test_a_quoted_previous_reply_cannot_hijack_the_report() -> None:
    user = (
        "Fix your reply.\n<previous_reply>\n<report>not the report</report>\n</previous_reply>\n"
        "<report>\nFINDINGS: Small effusion.\n</report>"
    )

    assert extract_report(user) == "FINDINGS: Small effusion."


def test_extract_report_strips_prompt_layout_only() -> None:
    assert extract_report("<report>\n  FINDINGS: Small effusion.\n</report>") == "FINDINGS: Small effusion."
    assert extract_report("just text ") == "just text"


def test_statement_pool_pairs_never_leak_negated_terms() -> None:
    # Every ordered pair of a negated statement and a positive one: the negated term never leaks.
    negated = [
        "No pneumothorax.",
        "No focal consolidation, pneumothorax, or pleural effusion.",
        "No effusion.",
    ]
    positive = ["Mild cardiomegaly.", "Calcified granuloma.", "Degenerative changes of the spine."]
    for first, second in itertools.chain(
        itertools.product(negated, positive), itertools.product(positive, negated)
    ):
        found = finding_text(summarize_report(f"FINDINGS: {first} {second}"))
        assert "pneumothora" not in found and "effusion" not in found and "consolidation" not in found


# --------------------------------------------------------------------------------------------------
# Issue 13: hedges, temporal words, coordination, anaphora, significance, other report types
# --------------------------------------------------------------------------------------------------
def certainty_of(items: list[Item], text: str) -> str | None:
    return next(item.get("certainty") for item in items if item["text"] == text)


def test_a_hedged_diagnosis_keeps_its_hedge_and_is_uncertain() -> None:
    output = summarize_report("IMPRESSION: Hyperinflation suggestive of emphysema.")

    assert [item["text"] for item in output["diagnoses"]] == ["Hyperinflation suggestive of emphysema"]
    assert certainty_of(output["diagnoses"], "Hyperinflation suggestive of emphysema") == "uncertain"
    assert certainty_of(output["key_findings"], "Hyperinflation suggestive of emphysema") == "uncertain"


@pytest.mark.parametrize(
    "statement",
    [
        "Patchy right basilar opacity, pneumonia cannot be excluded",
        "New left lower lobe opacity since the prior examination, atelectasis versus early consolidation",
        "Streaky bibasilar opacities, could represent scarring or infiltrate",
        "Ill-defined nodular opacity projecting over the right upper lung zone, nipple shadow or true nodule",
    ],
)
def test_a_diagnosis_is_not_cut_before_its_hedge(statement: str) -> None:
    # Given an impression whose second half carries the hedge (and is longer than 12 words)
    output = summarize_report(f"IMPRESSION: {statement}.")
    # Then the diagnosis is the whole statement, and it is uncertain
    assert [item["text"] for item in output["diagnoses"]] == [statement]
    assert output["diagnoses"][0].get("certainty") == "uncertain"


def test_a_definite_diagnosis_still_drops_its_lead_in_and_trailing_detail() -> None:
    output = summarize_report(
        "IMPRESSION: Dense left lower lobe opacity, consistent with pneumonia, which is new."
    )

    assert [item["text"] for item in output["diagnoses"]] == ["Pneumonia"]
    assert output["diagnoses"][0].get("certainty") == "definite"


@pytest.mark.parametrize(
    "statement",
    [
        "Stable mild cardiomegaly",
        "Unchanged enlargement of the cardiac silhouette",
        "Again seen is elevation of the right hemidiaphragm",
        "Chronic prominence of the interstitial markings",
        "Stable appearance of the left apical pleural thickening",
    ],
)
def test_stable_or_unchanged_abnormalities_are_findings(statement: str) -> None:
    output = summarize_report(f"FINDINGS: {statement}. No pneumothorax.\nIMPRESSION: {statement}.")

    assert output["key_findings"], statement
    assert NO_ACUTE_ABNORMALITY not in output["summary"]


@pytest.mark.parametrize(
    "statement",
    [
        "Heart size is stable.",
        "The cardiomediastinal silhouette is unchanged.",
        "Stable appearance of the chest.",
    ],
)
def test_stable_alone_is_not_a_finding(statement: str) -> None:
    assert summarize_report(f"FINDINGS: {statement} No pneumothorax.")["key_findings"] == []


@pytest.mark.parametrize(
    "phrase",
    [
        "opacification of the left costophrenic angle",
        "enlargement of the cardiac silhouette",
        "elevation of the right hemidiaphragm",
        "prominence of the pulmonary vasculature",
        "increased density in the right base",
    ],
)
def test_lexicon_names_opacification_enlargement_elevation_prominence_density(phrase: str) -> None:
    # A sentence that also says something normal needs the lexicon to find its abnormal clause
    output = summarize_report(f"FINDINGS: The lungs are otherwise clear; {phrase}.")

    assert texts(output["key_findings"]) == phrase[0].upper() + phrase[1:]


def test_post_negation_reaches_across_coordination() -> None:
    report = (
        "FINDINGS: The previously seen infiltrates and vascular engorgement have resolved. "
        "Endotracheal and nasogastric tubes have been removed. Mild cardiomegaly."
    )

    output = summarize_report(report)

    assert texts(output["key_findings"]) == "Mild cardiomegaly"
    found = finding_text(output)
    assert "infiltrate" not in found and "engorgement" not in found and "tube" not in found


def test_a_finding_seen_on_ct_but_not_on_the_radiograph_is_kept_whole() -> None:
    # The nodule exists (CT showed it): not negated, and its statement is not cut at "is"
    output = summarize_report("FINDINGS: The nodule seen on CT is not seen on the current radiograph.")

    assert texts(output["key_findings"]) == "The nodule seen on CT is not seen on the current radiograph"


def test_an_anaphoric_sentence_joins_its_antecedent() -> None:
    report = "FINDINGS: There is a left basilar opacity. This may represent atelectasis. No effusion."

    output = summarize_report(report)

    assert [item["text"] for item in output["key_findings"]] == ["Possible left basilar atelectasis"]
    assert output["key_findings"][0]["evidence"] == [
        "There is a left basilar opacity. This may represent atelectasis"
    ]
    assert output["key_findings"][0].get("certainty") == "uncertain"


def test_a_recommending_anaphor_is_follow_up_not_part_of_the_finding() -> None:
    output = summarize_report(
        "FINDINGS: Small right upper lobe nodule. This could be further evaluated with CT."
    )

    assert texts(output["key_findings"]) == "Small right upper lobe nodule"
    assert texts(output["follow_up"]) == "This could be further evaluated with CT"


def test_no_item_is_a_heading_a_recommendation_or_a_cut_fragment() -> None:
    report = (
        "CHEST, PA AND LATERAL\n"
        "FINDINGS: Mild cardiomegaly with no effusion. CT may be helpful to characterize the hilum.\n"
        "FINAL DIAGNOSIS:\nLeft breast, core biopsy:\nInvasive ductal carcinoma."
    )

    output = summarize_report(report)

    items = [item["text"] for item in output["key_findings"] + output["diagnoses"]]
    assert "Mild cardiomegaly" in items and "Invasive ductal carcinoma" in items
    assert not any(text.isupper() or text.endswith(":") for text in items), items
    assert not any("helpful" in text or text.lower().startswith("left breast") for text in items), items
    trailing = ("with", "and", "of", "is", "the", "no")
    assert not any(text.lower().split()[-1] in trailing for text in items), items


def test_summary_puts_positive_findings_first_by_significance() -> None:
    report = (
        "FINDINGS: Calcified granuloma in the right upper lobe. Degenerative changes of the thoracic spine. "
        "Mild cardiomegaly. No effusion. Small right apical pneumothorax."
    )

    summary = summarize_report(report)["summary"]

    assert summary.startswith("Findings include small right apical pneumothorax; mild cardiomegaly")
    assert "granuloma" not in summary  # incidental, while something significant is found


def test_incidental_findings_alone_are_summarized_as_such_never_as_no_acute_abnormality() -> None:
    report = (
        "FINDINGS: Calcified granuloma in the right upper lobe. The lungs are clear.\n"
        "IMPRESSION: No acute cardiopulmonary abnormality."
    )

    output = summarize_report(report)

    assert output["key_findings"]
    assert NO_ACUTE_ABNORMALITY not in output["summary"]
    assert output["summary"] == (
        "Chronic or incidental findings only: calcified granuloma in the right upper lobe. "
        "Impression: no acute cardiopulmonary abnormality."
    )


def test_summary_never_reassures_when_a_finding_was_extracted() -> None:
    pool = [
        "No pneumothorax.",
        "Stable mild cardiomegaly.",
        "Calcified granuloma.",
        "Degenerative changes of the spine.",
        "The lungs are clear.",
        "No acute cardiopulmonary abnormality.",
        "Left basilar opacity. This may represent atelectasis.",
        "Tubes have been removed.",
    ]
    rng = random.Random(13)
    for _ in range(150):
        findings = " ".join(rng.sample(pool, k=rng.randint(1, 4)))
        impression = " ".join(rng.sample(pool, k=rng.randint(1, 2)))
        for report in (f"FINDINGS: {findings}", f"FINDINGS: {findings}\nIMPRESSION: {impression}"):
            output = summarize_report(report)
            if output["key_findings"] or output["diagnoses"]:
                assert NO_ACUTE_ABNORMALITY not in output["summary"], report
            else:
                assert output["summary"] == NO_ACUTE_ABNORMALITY, report


LAB_REPORT = """LABORATORY RESULTS:
Glucose 182 mg/dL (high). Potassium 4.1 mmol/L. Sodium 138 mEq/L. Hemoglobin A1c 8.4 %.
LDL cholesterol 162 mg/dL.

ASSESSMENT: Type 2 diabetes mellitus, poorly controlled. Hyperlipidemia.

PLAN: Start atorvastatin 40 mg nightly. Repeat lipid panel in 6 to 8 weeks.
"""


def test_lab_values_are_not_medications() -> None:
    output = summarize_report(LAB_REPORT)

    assert [item["text"] for item in output["medications"]] == ["Start atorvastatin 40 mg nightly"]


def test_repeat_lipid_panel_in_weeks_is_follow_up() -> None:
    output = summarize_report(LAB_REPORT)

    assert [item["text"] for item in output["follow_up"]] == ["Repeat lipid panel in 6 to 8 weeks"]


def test_bare_results_percentages_and_sides_are_not_diagnoses() -> None:
    report = (
        "FINAL DIAGNOSIS:\nInvasive ductal carcinoma, grade 2.\nEstrogen receptor: Positive.\n"
        "HER2: Equivocal.\nKi-67: 18 percent.\nLaterality: Left.\nComment: Reflex FISH to follow."
    )

    output = summarize_report(report)

    assert [item["text"] for item in output["diagnoses"]] == ["Invasive ductal carcinoma"]
    assert [item["text"] for item in output["follow_up"]] == ["Reflex FISH to follow"]


@pytest.mark.parametrize(
    "report",
    [
        "S: Follow-up of hypertension. Feels well.\nA: Hypertension, well controlled.",
        "HISTORY: Follow-up of right lower lobe pneumonia.\nFINDINGS: The lungs are clear.",
        "The patient is here for follow-up of diabetes. Glucose log reviewed.",
    ],
)
def test_the_reason_for_a_visit_is_not_a_follow_up_item(report: str) -> None:
    assert summarize_report(report)["follow_up"] == []


def test_an_inflamed_non_perforated_appendix_keeps_inflamed() -> None:
    output = summarize_report("FINAL DIAGNOSIS: Inflamed, non-perforated appendix.")

    assert [item["text"] for item in output["diagnoses"]] == ["Inflamed, non-perforated appendix"]


def test_allergies_get_their_own_list() -> None:
    report = (
        "HISTORY: She is allergic to codeine and reports a latex allergy.\n"
        "ALLERGIES: Penicillin (hives), sulfa drugs - rash; shellfish\n"
        "MEDICATIONS: Lisinopril 10 mg daily."
    )

    output = summarize_report(report)

    assert [item["text"] for item in output["allergies"]] == [
        "Codeine",
        "Latex",
        "Penicillin (hives)",
        "Sulfa drugs (rash)",
        "Shellfish",
    ]
    assert [item["text"] for item in output["medications"]] == ["Lisinopril 10 mg daily"]
    assert all(quote in report for quote in quotes(output))
    ModelSummary.model_validate(output)


@pytest.mark.parametrize(
    "report",
    [
        "ALLERGIES: NKDA",
        "ALLERGIES: No known drug allergies.",
        "Allergies: None.",
        "HISTORY: Denies drug allergies. Not allergic to penicillin.",
    ],
)
def test_no_known_or_denied_allergies_are_no_items(report: str) -> None:
    assert summarize_report(report)["allergies"] == []


def test_discharge_summary_allergy_with_its_reaction() -> None:
    output = summarize_report(DISCHARGE)

    assert output["allergies"] == [
        Item(text="Penicillin (mild rash)", evidence=["Penicillin causes mild rash"])
    ]


# --------------------------------------------------------------------------------------------------
# The impression's synthesis: an appearance is stated as what the radiologist reads it as
# --------------------------------------------------------------------------------------------------
def test_an_appearance_consistent_with_a_diagnosis_is_stated_as_that_diagnosis() -> None:
    report = "FINDINGS: Left lower lobe airspace disease consistent with pneumonia. No effusion."

    output = summarize_report(report)

    assert [item["text"] for item in output["key_findings"]] == ["Left lower lobe pneumonia"]
    assert output["key_findings"][0]["evidence"] == [
        "Left lower lobe airspace disease consistent with pneumonia"
    ]
    assert output["key_findings"][0].get("certainty") == "definite"
    assert output["summary"] == "Findings include left lower lobe pneumonia."


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            "Patchy right basilar opacity, which may represent atelectasis",
            "Possible right basilar atelectasis",
        ),
        (
            "Streaky opacities in the left lung base, likely atelectasis",
            "Probable left lung base atelectasis",
        ),
        ("Right perihilar opacity suggestive of pneumonia", "Possible right perihilar pneumonia"),
    ],
)
def test_a_hedged_reading_keeps_its_hedge(statement: str, expected: str) -> None:
    output = summarize_report(f"FINDINGS: {statement}. Heart size is normal.")

    assert [item["text"] for item in output["key_findings"]] == [expected]
    assert output["key_findings"][0].get("certainty") == "uncertain"


def test_a_description_that_names_a_finding_of_its_own_is_never_replaced_by_its_reading() -> None:
    # The edema and the effusions are findings in their own right, not an appearance of the failure
    statement = "Interstitial edema and small bilateral effusions, consistent with heart failure"

    output = summarize_report(f"FINDINGS: {statement}.")

    assert [item["text"] for item in output["key_findings"]] == [statement]


def test_a_reading_of_an_unknown_masked_connector_keeps_the_statements_certainty() -> None:
    # De-identification masks hide a word: a bare mask is not known to hedge, "most XXXX" is "most likely"
    bare = summarize_report("FINDINGS: Left base opacity, XXXX atelectasis.")
    most = summarize_report("FINDINGS: Left base opacity most XXXX representing atelectasis.")

    assert [(i["text"], i.get("certainty")) for i in bare["key_findings"]] == [
        ("Left base atelectasis", "definite")
    ]
    assert [(i["text"], i.get("certainty")) for i in most["key_findings"]] == [
        ("Probable left base atelectasis", "uncertain")
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "Nodular opacities consistent with chronic granulomatous disease",
        "Left basilar opacity secondary to epicardial fat and overlying soft tissues",
        "Bandlike opacities in the right base which appear to represent scarring",
        "Rib deformities consistent with old fractures",
    ],
)
def test_an_appearance_read_as_benign_or_old_is_not_a_key_finding_beside_an_acute_one(statement: str) -> None:
    output = summarize_report(f"FINDINGS: Small right pleural effusion. {statement}.")

    assert [item["text"] for item in output["key_findings"]] == ["Small right pleural effusion"]
    assert output["summary"] == "Findings include small right pleural effusion."


def test_an_appearance_read_as_benign_alone_is_reported_as_chronic_or_incidental() -> None:
    output = summarize_report(
        "FINDINGS: Bandlike opacities in the right base which appear to represent scarring."
    )

    assert [item["text"] for item in output["key_findings"]] == ["Probable right base scarring"]
    assert output["summary"].startswith("Chronic or incidental findings only:")
    assert NO_ACUTE_ABNORMALITY not in output["summary"]


@pytest.mark.parametrize(
    "incidental",
    [
        "Calcified granuloma in the right upper lobe",
        "Multiple healed left rib fractures",
        "Surgical clips in the right upper quadrant",
        "Chronic appearing right basilar interstitial markings",
        "Mild degenerative changes of the thoracic spine",
    ],
)
def test_chronic_or_incidental_findings_are_not_key_findings_beside_an_acute_one(incidental: str) -> None:
    output = summarize_report(f"FINDINGS: {incidental}. Right upper lobe consolidation. No pneumothorax.")

    assert [item["text"] for item in output["key_findings"]] == ["Right upper lobe consolidation"]


def test_an_acute_finding_is_never_left_out_for_being_near_a_chronic_word() -> None:
    # An acute fracture and a line's position stay key findings next to a granuloma
    report = (
        "FINDINGS: Calcified granuloma. Acute displaced fracture of the right 6th rib. "
        "Right IJ central venous catheter tip in the mid SVC. Stable bullous emphysema."
    )

    output = summarize_report(report)

    assert [item["text"] for item in output["key_findings"]] == [
        "Acute displaced fracture of the right 6th rib",
        "Right IJ central venous catheter tip in the mid SVC",
        "Stable bullous emphysema",
    ]


def test_an_apparent_finding_is_uncertain() -> None:
    output = summarize_report("FINDINGS: Apparent cardiomegaly, accentuated by low lung volumes.")

    assert all(item.get("certainty") == "uncertain" for item in output["key_findings"])
    assert output["key_findings"]
