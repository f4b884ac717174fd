"""Shared constants and helpers of the face tests (a plain module, so test files can import it).

The face counts per sample photo (../shared/datasets/README.md describes each file) and the webcam-sized letterbox
are bench/faces.py's, so the recall benchmark and the tests read one table.
"""

from __future__ import annotations

from bench.faces import EXPECTED as EXPECTED_FACES
from bench.faces import letterbox

NOT_FRONTAL = {"45-m7-di-ph.jpg"}  # head turned ~45 degrees: excluded from the frontal-alignment checks

__all__ = ["EXPECTED_FACES", "NOT_FRONTAL", "letterbox"]
