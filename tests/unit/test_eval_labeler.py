"""The CheXpert-style labeler of ``medsum eval``: mentions, negation, uncertainty and No Finding."""

from __future__ import annotations

import pytest
from medsum_cli.eval.labeler import (
    OBSERVATIONS,
    PATHOLOGIES,
    label_items,
    label_text,
    reassures,
    split_sentences,
)

pytestmark = pytest.mark.disable_socket


# One positive sentence per observation: each is found, and only where it should be.
@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("The mediastinum is widened.", "Enlarged Cardiomediastinum"),
        ("Moderate cardiomegaly.", "Cardiomegaly"),
        ("A 2 cm nodule in the right upper lobe.", "Lung Lesion"),
        ("Patchy opacity at the left base.", "Lung Opacity"),
        ("Mild interstitial pulmonary edema.", "Edema"),
        ("Right lower lobe consolidation.", "Consolidation"),
        ("Left lower lobe pneumonia.", "Pneumonia"),
        ("Bibasilar atelectasis.", "Atelectasis"),
        ("Small apical pneumothorax.", "Pneumothorax"),
        ("Small bilateral pleural effusions.", "Pleural Effusion"),
        ("Apical pleural thickening.", "Pleural Other"),
        ("Healed right rib fractures.", "Fracture"),
        ("Dual-lead pacemaker in place.", "Support Devices"),
    ],
)
def test_each_observation_is_found_positive(text: str, observation: str) -> None:
    # When
    labels = label_text(text)

    # Then
    assert labels[observation] == 1
    assert labels.no_finding is (observation == "Support Devices")


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("No pneumothorax.", "Pneumothorax"),
        ("There is no pleural effusion.", "Pleural Effusion"),
        ("Lungs are clear without focal consolidation.", "Consolidation"),
        ("Negative for pneumonia.", "Pneumonia"),
        ("The left pleural effusion has resolved.", "Pleural Effusion"),
        ("Pulmonary nodule is not seen.", "Lung Lesion"),
        ("Heart size is normal.", "Cardiomegaly"),
        ("The heart is not enlarged.", "Cardiomegaly"),
        ("Normal cardiomediastinal silhouette.", "Enlarged Cardiomediastinum"),
    ],
)
def test_negated_mentions_are_negative(text: str, observation: str) -> None:
    labels = label_text(text)

    assert labels[observation] == 0
    assert labels.no_finding


def test_a_negation_reaches_every_item_of_a_list() -> None:
    labels = label_text("No focal consolidation, pneumothorax, or pleural effusion.")

    assert [labels[name] for name in ("Consolidation", "Pneumothorax", "Pleural Effusion")] == [0, 0, 0]


def test_a_negation_stops_at_but() -> None:
    labels = label_text("No evidence of pneumonia, but there is a small left effusion.")

    assert labels["Pneumonia"] == 0
    assert labels["Pleural Effusion"] == 1


def test_a_negation_does_not_reach_back() -> None:
    labels = label_text("Mild cardiomegaly without edema.")

    assert labels["Cardiomegaly"] == 1
    assert labels["Edema"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Possible pneumonia.",
        "Pneumonia cannot be excluded.",
        "Cannot exclude pneumonia.",
        "Findings suspicious for pneumonia.",
        "Opacity may represent pneumonia.",
        "Atelectasis versus pneumonia.",
        "Atelectasis or pneumonia.",
        "Pneumonia is not excluded.",
    ],
)
def test_hedged_mentions_are_uncertain(text: str) -> None:
    labels = label_text(text)

    assert labels["Pneumonia"] == -1
    assert not labels.no_finding  # an uncertain finding is still a finding


def test_a_hedge_after_a_mention_reaches_only_the_mention_next_to_it() -> None:
    labels = label_text("Cardiomegaly with vascular congestion and suspected pulmonary edema.")

    assert labels["Cardiomegaly"] == 1
    assert labels["Edema"] == 1  # "vascular congestion" is stated; the suspected edema is uncertain
    assert label_text("Pneumonia is suspected.")["Pneumonia"] == -1
    assert label_text("Cardiomegaly and small effusion versus pleural thickening.")["Cardiomegaly"] == 1


def test_cannot_be_excluded_wins_over_the_negation_in_it() -> None:
    # "not" in "cannot be excluded" must not negate: pre-negation uncertainty is checked first
    assert label_text("A small pneumothorax cannot be excluded.")["Pneumothorax"] == -1


def test_no_new_is_uncertain_as_in_chexpert() -> None:
    assert label_text("No new consolidation.")["Consolidation"] == -1


def test_no_change_does_not_negate() -> None:
    assert label_text("No significant change in the right pleural effusion.")["Pleural Effusion"] == 1


def test_stable_heart_size_is_uncertain_and_bare_anatomy_is_not_a_mention() -> None:
    assert label_text("Stable heart size.")["Cardiomegaly"] == -1
    assert label_text("Granuloma projecting over the heart.")["Cardiomegaly"] is None


def test_unmentions_are_not_mentions() -> None:
    assert label_text("Small pericardial effusion.")["Pleural Effusion"] is None
    assert label_text("Calcified nodule in the left lung.")["Lung Lesion"] is None
    assert label_text("Massive hiatal hernia.")["Lung Lesion"] is None


@pytest.mark.parametrize(
    "text",
    [
        "No acute cardiopulmonary abnormality.",
        "1. No acute radiographic cardiopulmonary process.",
        "Heart size normal. Lungs are clear. No pneumothorax or effusion.",
        "Right PICC line tip in the SVC. No acute disease.",  # devices do not count against No Finding
    ],
)
def test_no_finding_when_nothing_abnormal_is_stated(text: str) -> None:
    labels = label_text(text)

    assert labels.no_finding
    assert all(labels[name] in (None, 0) for name in PATHOLOGIES)


@pytest.mark.parametrize(
    "text",
    [
        "Calcified granuloma in the right upper lobe.",
        "Degenerative changes of the thoracic spine.",
        "Hyperinflated lungs consistent with emphysema.",
    ],
)
def test_other_abnormalities_make_no_finding_false(text: str) -> None:
    labels = label_text(text)

    assert not labels.no_finding
    assert labels.other
    assert all(labels[name] is None for name in PATHOLOGIES)


def test_heart_failure_makes_cardiomegaly_uncertain() -> None:
    labels = label_text("Congestive heart failure.")

    assert labels["Edema"] == 1
    assert labels["Cardiomegaly"] == -1


def test_positive_beats_uncertain_beats_negative_across_mentions() -> None:
    labels = label_text(
        "No left effusion. Possible right effusion. Right basilar opacity. No opacity on the left."
    )

    assert labels["Pleural Effusion"] == -1
    assert labels["Lung Opacity"] == 1


def test_an_item_marked_uncertain_states_nothing_as_definite() -> None:
    labels = label_items([("Right lower lobe pneumonia.", False), ("Pleural effusion", True)])

    assert labels["Pneumonia"] == 1
    assert labels["Pleural Effusion"] == -1


def test_labels_cover_the_fourteen_observations() -> None:
    assert len(OBSERVATIONS) == 14
    assert list(label_text("").as_dict()) == list(OBSERVATIONS)
    assert label_text("").no_finding


def test_sentences_split_at_list_numbers_and_semicolons() -> None:
    assert split_sentences("1. No effusion. 2. Mild cardiomegaly; no edema") == [
        "1. No effusion.",
        "2. Mild cardiomegaly",
        "no edema",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No acute cardiopulmonary abnormality.", True),
        ("Heart size is normal. Lungs are clear.", True),
        ("Findings include mild anterior wedging of a thoracic vertebra.", False),  # no observation for it
        ("Mild cardiomegaly. No acute cardiopulmonary abnormality.", False),  # states a finding
        ("", False),
    ],
)
def test_reassures_needs_something_ruled_out_and_nothing_abnormal(text: str, expected: bool) -> None:
    assert reassures(text) is expected
