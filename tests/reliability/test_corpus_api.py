"""The bad-input corpus through the Python API: ``core.io``, ``Detector`` and ``InferenceEngine``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .corpus import EXPECTS, MEDIA, Case, build_corpus


def _digest(cases: list[Case]) -> dict[str, str]:
    out = {}
    for c in cases:
        data = c.path.read_bytes() if c.path is not None else c.array.tobytes()
        out[c.kind] = hashlib.sha256(data).hexdigest()
    return out


def test_corpus_is_large_varied_and_deterministic(corpus: list[Case], samples_dir: Path, tmp_path: Path):
    kinds = [c.kind for c in corpus]
    assert len(kinds) == len(set(kinds)) >= 28
    assert {c.media for c in corpus} == set(MEDIA) and {c.expect for c in corpus} == set(EXPECTS)
    assert all(c.note and "\n" not in c.note for c in corpus)
    assert _digest(build_corpus(tmp_path, samples_dir)) == _digest(corpus)
