"""The bad-input corpus as a session fixture (built once, in a temporary folder, from the real samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.corpus import Case, build_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> list[Case]:
    """Every corpus case; files live under one session temp folder."""
    return build_corpus(tmp_path_factory.mktemp("corpus"), samples_dir)
