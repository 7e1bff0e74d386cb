"""Fixtures shared by intake's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_local import LocalLlm


@pytest.fixture
def llm_server(settings) -> Iterator[LocalLlm]:
    """A local OpenAI-compatible server, and intake configured to ask it."""
    with LocalLlm() as llm:
        settings.DISPATCH_LLM_URL = llm.url
        settings.DISPATCH_LLM_MODEL = "test-model"
        settings.DISPATCH_LLM_API_KEY = ""
        settings.DISPATCH_LLM_TIMEOUT_SECONDS = 4
        settings.DISPATCH_LLM_MIN_CONFIDENCE = 80
        yield llm
