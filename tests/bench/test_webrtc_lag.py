"""bench/webrtc.py's label lag: where the clip changes expression, which clip frame arrived, how long until shown."""

from __future__ import annotations

import numpy as np
import pytest

from bench.webrtc import change_points, clip_positions, label_lags


def test_change_points_merge_flickers_and_wrap_around_the_loop() -> None:
    labels = ["neutral"] * 10 + ["happy"] + ["neutral"] * 5 + ["happy"] * 12 + ["sad"] * 2 + ["happy"] * 6
    assert change_points(labels) == [(0, "neutral"), (16, "happy")]  # the 1- and 2-frame runs are flickers
    assert change_points(["happy"] * 3 + ["neutral"] * 5 + ["happy"] * 4) == [(3, "neutral"), (8, "happy")]
    assert change_points(["neutral"] * 6) == [(0, "neutral")]
    assert change_points([]) == []


def test_clip_positions_find_frames_despite_noise_and_another_brightness_range() -> None:
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 255, (40, 144)).astype(np.float32)
    order = rng.integers(0, 40, 200)
    seen = 16 + clip[order] * 219 / 255 + rng.normal(0, 8, (200, 144))  # limited range, compression noise
    assert (clip_positions(seen, clip) == order).all()


def _session(positions, label_of_frame, period=1 / 30, latency=0.05):
    """Every camera frame processed; result n published ``latency`` after frame n arrived."""
    arrivals = [(n, n * period) for n in range(len(positions))]
    results = {n: (t + latency, label_of_frame(n)) for n, t in arrivals}
    return arrivals, results


def test_label_lag_is_the_time_from_the_new_expression_to_its_label() -> None:
    changes = [(0, "neutral"), (10, "happy")]
    positions = [k % 20 for k in range(60)]  # three loops of a 20-frame clip
    # the page shows the clip's label two frames late (smoothing), every result 50 ms after its frame arrived
    arrivals, results = _session(positions, lambda n: "happy" if 10 <= (n - 2) % 20 else "neutral")
    out = label_lags(arrivals, positions, results, changes)
    assert out["events"] == 5 and out["missed"] == 0 and out["already_shown"] == 0
    assert out["lags_ms"] == pytest.approx([2 / 30 * 1e3 + 50] * 5, abs=0.1)
    assert out["median_ms"] == pytest.approx(116.7, abs=0.1)


def test_label_lag_counts_missed_and_already_shown_changes_and_ignores_a_stray_frame() -> None:
    changes = [(0, "neutral"), (10, "happy")]
    positions = [k % 20 for k in range(40)]
    positions[5] = 12  # one frame matched to the wrong part of the clip is not a change
    arrivals, results = _session(positions, lambda n: "neutral")  # the page never says happy
    out = label_lags(arrivals, positions, results, changes)
    assert out["events"] == 3  # 10 -> happy, 20 -> neutral, 30 -> happy
    assert out["missed"] == 2 and out["already_shown"] == 1 and out["lags_ms"] == [] and out["median_ms"] is None


def test_loadavg_is_read_as_the_kernel_writes_it(tmp_path) -> None:
    from bench.webrtc import read_loadavg

    (tmp_path / "loadavg").write_text("7.91 6.02 4.50 9/412 31337\n")
    out = read_loadavg(tmp_path / "loadavg")
    assert (out["1min"], out["5min"], out["15min"], out["tasks"]) == (7.91, 6.02, 4.5, "9/412")
    assert set(read_loadavg()) == set(out)  # this machine's own file has the same fields


def test_the_bench_names_the_trained_weights_the_page_runs() -> None:
    from bench.webrtc import model_record, page_detector
    from dashboard.sidebar import Settings

    record = model_record(page_detector())
    assert record["model"] == Settings().model and record["trained"]
    assert len(record["weights_sha256"]) == 64 and "trained weights" in record["weights"]
