"""An oracle for the model card: read its figures back with regular expressions and compare them with the sidecar.

Independent of ``training.model_card``: it knows only the card's visible layout, so a renderer that prints the
wrong number, the wrong row or a stale file fails here.
"""

from __future__ import annotations

import re

_FIELDS = ("value", "ci_low", "ci_high")
_SCORE_ROW = re.compile(r"^\| ([^|]+) \| (\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", re.M)


def _close(shown: str, value: float, decimals: int) -> bool:
    """``shown`` is ``value`` printed with ``decimals`` places (a dash or other text is not)."""
    return re.fullmatch(r"[\d.]+", shown) is not None and abs(float(shown) - value) <= 0.5 * 10**-decimals + 1e-9


def _cell_matches(cell: str, metric: dict, scale: float, decimals: int) -> bool:
    """``"v % [lo, hi]"`` / ``"v [lo, hi]"`` against ``{value, ci_low, ci_high}``; ``—`` for an undefined value."""
    want = [metric.get(f) for f in _FIELDS]
    if want[0] is None:
        return cell.strip() == "—"
    want = [w for w in want if w is not None]
    shown = re.findall(r"\d+\.\d+", cell)
    return len(shown) == len(want) and all(_close(c, scale * w, decimals) for c, w in zip(shown, want, strict=True))


def _row_matches(cells: tuple[str, ...], entry: dict) -> bool:
    """Accuracy and macro-F1 in percent with 2 places, ECE with 3, each value with its CI bounds."""
    acc, f1, ece = cells
    return (
        _cell_matches(acc, entry["accuracy"], 100, 2)
        and _cell_matches(f1, entry["macro_f1"], 100, 2)
        and _cell_matches(ece, entry["ece"], 1, 3)
    )


def check_card(text: str, meta: dict) -> None:
    """Assert that every test score, per-class F1, the export slice, the hash and the size agree with ``meta``."""
    scores = text.split("## Test scores", 1)[1].split("Per-class F1", 1)[0]
    rows = {m[0].strip(): m for m in _SCORE_ROW.findall(scores)}
    assert len(rows) == len(meta["test"]), (sorted(rows), sorted(meta["test"]))
    header = re.search(r"^\| data \| ([a-z |]+) \|$", text, re.M)
    classes = [c.strip() for c in header[1].split("|")]
    used: set[str] = set()
    for key, entry in meta["test"].items():
        hits = [k for k, r in rows.items() if k not in used and int(r[1]) == entry["n"] and _row_matches(r[2:], entry)]
        assert hits, (key, "no row of the test-score table shows these figures")
        used.add(hits[0])
        f1_row = re.search(rf"^\| {re.escape(hits[0])} \| ([^\n]+) \|$", text[header.end() :], re.M)
        shown = dict(zip(classes, (c.strip() for c in f1_row[1].split("|")), strict=True))
        for name, cell in shown.items():
            value = entry["per_class_f1"].get(name)  # None or absent: the class has no support there
            assert cell == "—" if value is None else _close(cell, value, 3), (key, name, cell)
        assert entry["command"] in text, key
    sl = meta["slice"]
    m = re.search(r"is (\d\.\d{4}) \((\d+) correct\)", text)
    assert _close(m[1], sl["accuracy"], 4) and int(m[2]) == sl["correct"], (m[0], sl)
    assert meta["sha256"].startswith(re.search(r"sha256 `([0-9a-f]{8,})…`", text)[1])
    assert _close(re.search(r"^\| parameters \| ([\d.]+) M \|$", text, re.M)[1], meta["params"] / 1e6, 2)
