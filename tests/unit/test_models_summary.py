"""The summary contract's lists: what a stored summary reads back as, and what the model is asked for."""

from __future__ import annotations

import json

from medsum.logic.summarize import SYSTEM_PROMPT, summary_tool
from medsum.logic.verify import ITEM_LISTS
from medsum.models import ModelSummary, Summary

STORED_BEFORE_ALLERGIES = {
    "summary": "Mild cardiomegaly.",
    "key_findings": [{"text": "Mild cardiomegaly", "evidence": [{"start": 10, "end": 27}]}],
    "diagnoses": [],
    "medications": [],
    "follow_up": [],
    "model_id": "local.clinical-extractive-v1",
    "prompt_version": "2026-11-30.1",
    "verification": None,
}


def test_a_summary_stored_before_allergies_existed_still_loads() -> None:
    summary = Summary.model_validate(STORED_BEFORE_ALLERGIES)

    assert summary.allergies == []
    assert summary.key_findings[0].text == "Mild cardiomegaly"
    assert json.loads(summary.model_dump_json())["allergies"] == []


def test_allergies_are_a_list_of_the_contract_like_the_others() -> None:
    model = ModelSummary.model_validate(
        {"summary": "x", "allergies": [{"text": "Penicillin (hives)", "evidence": ["Penicillin - hives"]}]}
    )

    assert ITEM_LISTS[-1] == "allergies"
    assert set(ITEM_LISTS) <= set(Summary.model_fields) and set(ITEM_LISTS) <= set(ModelSummary.model_fields)
    assert model.allergies[0].evidence == ["Penicillin - hives"]
    assert ModelSummary.model_validate({"summary": "x"}).allergies == []


def test_both_prompt_forms_ask_for_allergies() -> None:
    # The forced tool's schema comes from ModelSummary; the JSON prompt lists its keys by hand
    assert "allergies" in summary_tool().input_schema["properties"]
    assert '"allergies": [' in SYSTEM_PROMPT
