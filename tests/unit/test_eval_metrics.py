"""``medsum eval`` scoring on tiny hand-made fixtures: every number below is computed by hand."""

from __future__ import annotations

from typing import Any

import pytest
from medsum_cli.eval.baselines import NORMAL_SENTENCE, baseline_texts
from medsum_cli.eval.inputs import (
    Case,
    EvalInputError,
    Result,
    findings_section,
    parse_labels,
    read_references,
    remove_impression,
)
from medsum_cli.eval.labeler import label_text
from medsum_cli.eval.metrics import MODEL, Pair, Scored, agreement, evaluate, gate_metrics, percentile
from medsum_cli.eval.prices import load_prices, parse_prices
from medsum_cli.eval.rouge import rouge_l

pytestmark = pytest.mark.disable_socket

REPORT = (
    "EXAMINATION: Chest, 2 views.\n\nFINDINGS: Heart size normal. Small left pleural effusion. "
    "No pneumothorax.\n\nIMPRESSION: Small left pleural effusion.\n\nRECOMMENDATION: Follow-up."
)


def pair(reference: str, output: str) -> Pair:
    return Pair(
        reference=label_text(reference), impression=reference, output=Scored(label_text(output), output)
    )


def test_f1_micro_and_macro_by_hand() -> None:
    # Given three reports:
    #   1. reference effusion + edema,   output effusion          -> Effusion TP, Edema FN
    #   2. reference pneumothorax,       output pneumothorax + edema -> Pneumothorax TP, Edema FP
    #   3. reference normal,             output normal            -> No Finding TP
    pairs = [
        pair("Left pleural effusion. Pulmonary edema.", "Left pleural effusion."),
        pair("Right pneumothorax.", "Right pneumothorax. Pulmonary edema."),
        pair("No acute disease.", "No acute disease."),
    ]

    # When
    metrics = agreement(pairs)

    # Then: micro over all 14 observations: TP 3 (effusion, pneumothorax, no finding), FP 1, FN 1
    assert metrics["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # 0.75
    assert metrics["micro_precision"] == pytest.approx(3 / 4)
    assert metrics["micro_recall"] == pytest.approx(3 / 4)
    # macro over the observations that occur: Effusion 1, Pneumothorax 1, No Finding 1, Edema 0
    assert metrics["macro_f1"] == pytest.approx((1 + 1 + 1 + 0) / 4)
    # CheXpert 5 (Atelectasis, Cardiomegaly, Consolidation, Edema, Effusion): TP 1, FP 1, FN 1
    assert metrics["micro_f1_5"] == pytest.approx(2 / 4)
    # without No Finding: TP 2 (effusion, pneumothorax), FP 1, FN 1
    assert metrics["micro_f1_findings"] == pytest.approx(4 / 6)
    assert metrics["per_observation"]["Edema"] == {
        "tp": 0,
        "fp": 1,
        "fn": 1,
        "reference_positive": 1,
        "f1": 0.0,
    }
    assert metrics["per_observation"]["Fracture"]["f1"] is None  # never mentioned: not in the macro
    assert metrics["no_finding_accuracy"] == pytest.approx(1.0)


def test_false_reassurance_counts_normal_outputs_for_abnormal_references() -> None:
    pairs = [
        pair("Right lower lobe pneumonia.", NORMAL_SENTENCE),
        pair("Small left pleural effusion.", "Small left pleural effusion."),
        pair("No acute disease.", NORMAL_SENTENCE),
    ]

    metrics = agreement(pairs)

    assert (metrics["false_reassurance_reports"], metrics["reference_abnormal_reports"]) == (1, 2)
    assert metrics["false_reassurance"] == pytest.approx(0.5)
    assert metrics["no_finding_accuracy"] == pytest.approx(2 / 3)


def test_uncertain_stated_as_definite_and_contradictions() -> None:
    pairs = [
        pair("Possible right lower lobe pneumonia.", "Right lower lobe pneumonia."),  # u -> 1
        pair("Atelectasis versus pneumonia.", "Possible atelectasis or pneumonia."),  # u, u -> u, u
        pair("No pneumothorax.", "Small right pneumothorax."),  # 0 -> 1: contradiction
    ]

    metrics = agreement(pairs)

    assert (metrics["uncertain_as_definite_count"], metrics["reference_uncertain"]) == (1, 3)
    assert metrics["uncertain_as_definite"] == pytest.approx(1 / 3)
    assert metrics["contradiction_reports"] == 1
    assert metrics["contradiction_rate"] == pytest.approx(1 / 3)


def test_rouge_l_by_hand() -> None:
    # LCS of "no acute disease" and "no acute cardiopulmonary disease" is 3 words: P 3/3, R 3/4
    score = rouge_l("No acute disease.", "No acute cardiopulmonary disease.")

    assert (score.precision, score.recall) == (1.0, 0.75)
    assert score.f1 == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert rouge_l("", "anything").f1 == 0.0


def test_the_normal_sentence_games_rouge_but_not_clinical_agreement() -> None:
    # Given a normal and an abnormal report, a model that names the finding and the constant sentence
    pairs_model = [
        pair("No acute cardiopulmonary abnormality.", "Lungs are clear."),
        pair("Small right pleural effusion.", "Right pleural effusion is small."),
    ]
    pairs_constant = [
        pair("No acute cardiopulmonary abnormality.", NORMAL_SENTENCE),
        pair("Small right pleural effusion.", NORMAL_SENTENCE),
    ]

    model, constant = agreement(pairs_model), agreement(pairs_constant)

    assert constant["rouge_l"] > model["rouge_l"]
    assert model["micro_f1"] > constant["micro_f1"]
    assert constant["false_reassurance"] == 1.0 and model["false_reassurance"] == 0.0


def test_baselines_copy_the_findings() -> None:
    findings = findings_section(REPORT)

    texts = baseline_texts(findings)

    assert findings == "Heart size normal. Small left pleural effusion. No pneumothorax."
    assert texts == {
        "normal sentence": NORMAL_SENTENCE,
        "first FINDINGS sentence": "Heart size normal.",
        "all FINDINGS": findings,
    }


def test_remove_impression_keeps_the_other_sections() -> None:
    text, removed = remove_impression(REPORT)

    assert removed
    assert "IMPRESSION" not in text and "Small left pleural effusion." in text
    assert text.endswith("RECOMMENDATION: Follow-up.")
    assert remove_impression("FINDINGS: Clear lungs.") == ("FINDINGS: Clear lungs.", False)


def test_reference_labels_are_read_and_checked() -> None:
    labels = parse_labels({"pleural_effusion": 1, "Pneumonia": -1, "Edema": None})

    assert labels["Pleural Effusion"] == 1 and labels["Pneumonia"] == -1
    assert not labels.no_finding
    with pytest.raises(ValueError, match="unknown observation"):
        parse_labels({"Broken Heart": 1})
    with pytest.raises(ValueError, match="must be 1, 0, -1 or null"):
        parse_labels({"Edema": 2})


def test_iu_layout_is_detected_and_the_impression_removed_on_request() -> None:
    line = (
        '{"id": "iu-1", "full_text": ' + __import__("json").dumps(REPORT) + ', "findings": '
        '"Heart size normal. Small left pleural effusion.", "impression": "Small left pleural effusion."}\n'
    )

    [case], not_found = read_references(line.encode(), "refs.jsonl", without_impression=True)

    assert case.custom_id == "iu-1" and not_found == 0
    assert "IMPRESSION" not in case.report_text
    assert case.labels["Pleural Effusion"] == 1
    assert case.findings == "Heart size normal. Small left pleural effusion."


def test_a_reference_line_without_a_reference_is_refused() -> None:
    with pytest.raises(EvalInputError, match=r"refs.jsonl:1: no reference"):
        read_references(b'{"custom_id": "a", "report_text": "x"}\n', "refs.jsonl")


def summary(text: str, items: list[dict[str, Any]], **verification: Any) -> dict[str, Any]:
    return {
        "summary": text,
        "key_findings": items,
        "diagnoses": [],
        "medications": [],
        "follow_up": [],
        "model_id": "m",
        "prompt_version": "p",
        "verification": {
            "items_checked": len(items) + verification.get("dropped", 0),
            "items_kept": len(items),
            "dropped": {"negated": verification.get("dropped", 0)},
            "needs_review": bool(verification.get("dropped")),
            "verifier_version": "v",
        },
    }


def test_evaluate_scores_completed_reports_and_the_baselines_on_the_same_ones() -> None:
    cases = [
        Case(
            "a", REPORT, "Small left pleural effusion.", label_text("Small left pleural effusion."), "x. y."
        ),
        Case(
            "b", REPORT, "Small left pleural effusion.", label_text("Small left pleural effusion."), "x. y."
        ),
        Case("c", REPORT, "No acute disease.", label_text("No acute disease."), "x."),
    ]
    effusion = {"text": "Small left pleural effusion", "evidence": [{"start": 60, "end": 87}]}
    outside = {"text": "Pleural effusion", "evidence": [{"start": 60, "end": 10_000}]}
    results = {
        "a": Result(
            "a",
            "COMPLETED",
            summary("Small left pleural effusion.", [effusion, outside], dropped=1),
            usage={"model_id": "us.test-model", "input_tokens": 1000, "output_tokens": 100},
            latency_seconds=2.0,
        ),
        "b": Result("b", "FAILED"),
        "zzz": Result("zzz", "COMPLETED", summary("x", [])),
    }
    prices = parse_prices({"models": {"test-model": {"input_per_1k": 0.5, "output_per_1k": 2}}}, "t")

    report = evaluate(cases, results, prices)

    run = report["run"]
    assert (run["references"], run["completed"], run["results_missing"], run["results_unmatched"]) == (
        3,
        1,
        1,
        1,
    )
    assert run["coverage"] == pytest.approx(1 / 3)
    assert run["status_counts"] == {"COMPLETED": 1, "FAILED": 1}
    assert run["contract_valid"] == 1.0
    assert (run["items"], run["items_grounded"], run["spans_outside_text"]) == (2, 1, 1)
    assert run["verification"]["dropped_negated"] == 1 and run["verification"]["needs_review"] == 1
    # 1000 in * 0.5 / 1k + 100 out * 2 / 1k = 0.7 per report -> 700 per 1,000 reports
    assert run["cost"]["per_1k_reports"] == pytest.approx(700.0)
    assert run["latency"]["p50_seconds"] == 2.0
    assert {name: metrics["reports"] for name, metrics in report["systems"].items()} == {
        MODEL: 1,
        "normal sentence": 1,
        "first FINDINGS sentence": 1,
        "all FINDINGS": 1,
    }
    assert report["systems"]["normal sentence"]["false_reassurance"] == 1.0
    assert gate_metrics(report)["cost_per_1k"] == pytest.approx(700.0)


def test_an_unpriced_model_has_no_cost() -> None:
    cases = [Case("a", "t", "No acute disease.", label_text("No acute disease."), "t")]
    results = {
        "a": Result("a", "COMPLETED", summary("ok", []), usage={"model_id": "other", "input_tokens": 5})
    }

    report = evaluate(cases, results, parse_prices({"models": {}}, "t"))

    assert report["run"]["cost"]["per_1k_reports"] is None
    assert report["run"]["cost"]["unpriced_models"] == ["other"]


def test_price_lookup_strips_profile_prefixes_and_arns() -> None:
    table = load_prices()

    haiku = "anthropic.claude-haiku-4-5-20251001-v1:0"
    assert table.price(f"us.{haiku}") == table.price(haiku) is not None
    assert table.price(f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{haiku}") is not None
    assert table.price("nobody.model") is None
    with pytest.raises(ValueError, match="input_per_1k must be a number"):
        parse_prices({"models": {"m": {"input_per_1k": "free", "output_per_1k": 1}}}, "t")


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) is None


def test_a_summary_that_says_normal_under_its_own_findings_is_counted() -> None:
    # Given three completed reports: findings under a reassuring sentence, findings under a sentence that
    # states them, and no findings at all
    cases = [Case(name, REPORT, "No acute disease.", label_text("No acute disease."), "x.") for name in "abc"]
    pneumonia = {"text": "Right lower lobe pneumonia", "evidence": [{"start": 0, "end": 5}]}
    results = {
        "a": Result("a", "COMPLETED", summary("No acute cardiopulmonary abnormality.", [pneumonia])),
        "b": Result("b", "COMPLETED", summary("Right lower lobe pneumonia.", [pneumonia])),
        "c": Result("c", "COMPLETED", summary("No acute cardiopulmonary abnormality.", [])),
    }

    report = evaluate(cases, results, parse_prices({"models": {}}, "t"))

    # Then only the first counts, out of the two that have findings
    assert report["run"]["reassurance_despite_findings"] == {
        "reports_with_findings": 2,
        "reassuring": 1,
        "rate": 0.5,
    }
    assert gate_metrics(report)["reassurance_despite_findings"] == 0.5


def test_a_summary_naming_a_finding_the_labeler_does_not_know_is_not_reassuring() -> None:
    cases = [Case("a", REPORT, "No acute disease.", label_text("No acute disease."), "x.")]
    pneumonia = {"text": "Right lower lobe pneumonia", "evidence": [{"start": 0, "end": 5}]}
    results = {
        "a": Result("a", "COMPLETED", summary("Findings include mild vertebral wedging.", [pneumonia]))
    }

    report = evaluate(cases, results, parse_prices({"models": {}}, "t"))

    assert report["run"]["reassurance_despite_findings"]["reassuring"] == 0
