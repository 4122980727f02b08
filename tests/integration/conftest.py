"""Integration tests: the real handlers with AWS-shaped events against moto.

The resources come from ``template.yaml`` itself (translated with aws-sam-translator and created
through moto's CloudFormation), so a table key or queue setting that drifts from the code fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from medsum_local.inprocess import Stack, deployed_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The template deployed into a fresh in-process moto account (see
    :func:`medsum_local.inprocess.deployed_stack`)."""
    with deployed_stack(monkeypatch) as deployed:
        yield deployed
