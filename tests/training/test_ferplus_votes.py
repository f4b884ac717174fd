"""A bad FERPlus votes file: a missing column is a clear error; unusable rows are skipped, counted and logged,
and the rows around them keep their own FER2013 pixels and labels.

Fixture: the first 28 real FER2013 rows and the first 30 real FERPlus rows (rows 17 and 23 are FERPlus' non-faces,
absent from FER2013), with the last rows moved to PublicTest in both files and a few vote rows doctored.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.labels import FERPLUS_VOTE_COLUMNS, canonical, class_names
from training import datasets as D
from training.config import DataConfig

N_PLUS = 30  # original FERPlus rows; 17 and 23 have no Image name
N_FER = 28
PUBLIC_FROM = 20  # FER2013 rows >= 20 become PublicTest in both files
VOTES = [*FERPLUS_VOTE_COLUMNS, "unknown", "NF"]
# original FERPlus row -> how it is spoiled; joined (= FER2013) row = original row minus the non-faces before it
DOCTOR = {3: "zero", 8: "negative", 12: "text", 20: "empty", 25: "zero"}
JOINED = {3: 3, 8: 8, 12: 12, 20: 19, 25: 23}


def _write_root(root: Path, shared: Path, doctor: dict[int, str], drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Write the fixture; returns the untouched FERPlus rows (original numbering)."""
    with gzip.open(shared / "fer2013" / "fer2013.csv.gz", "rt") as fh:
        lines = [next(fh) for _ in range(N_FER + 1)]
    fer = pd.read_csv(pd.io.common.StringIO("".join(lines)))
    fer.loc[PUBLIC_FROM:, "Usage"] = "PublicTest"
    (root / "fer2013").mkdir(parents=True)
    fer.to_csv(root / "fer2013" / "fer2013.csv.gz", index=False, compression="gzip")
    plus = pd.read_csv(shared / "ferplus" / "fer2013new.csv", nrows=N_PLUS, dtype={c: object for c in VOTES})
    assert plus["Image name"].isna().to_numpy().nonzero()[0].tolist() == [17, 23]
    clean = plus.copy()
    joined_rows = np.flatnonzero(plus["Image name"].notna())
    plus.loc[joined_rows[PUBLIC_FROM:], "Usage"] = "PublicTest"
    for row, how in doctor.items():
        if how == "zero":
            plus.loc[row, VOTES] = "0"
        elif how == "negative":
            plus.loc[row, "neutral"] = "-3"
        elif how == "text":
            plus.loc[row, "happiness"] = "x"
        elif how == "empty":
            plus.loc[row, "fear"] = ""
    (root / "ferplus").mkdir()
    plus.drop(columns=list(drop)).to_csv(root / "ferplus" / "fer2013new.csv", index=False)
    return clean


def _cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(dataset="ferplus", num_classes=8, root=str(root), cache_dir=str(root / "cache"), **kw)


def test_missing_columns_name_the_columns_and_the_file(tmp_path, shared_datasets):
    _write_root(tmp_path, shared_datasets, {}, drop=("contempt", "NF"))
    with pytest.raises(D.DatasetError) as err:
        D.load_split(_cfg(tmp_path), "train")
    msg = str(err.value)
    assert "['NF', 'contempt']" in msg and str(tmp_path / "ferplus" / "fer2013new.csv") in msg
    assert "\n" not in msg


def test_unreadable_votes_file_is_a_dataset_error(tmp_path, shared_datasets):
    _write_root(tmp_path, shared_datasets, {})
    (tmp_path / "ferplus" / "fer2013new.csv").write_text("")
    with pytest.raises(D.DatasetError, match="not a readable CSV"):
        D.load_split(_cfg(tmp_path), "train")


@pytest.mark.parametrize("label_mode", ["hard", "soft"])
def test_bad_rows_are_skipped_counted_and_the_join_stays_aligned(tmp_path, shared_datasets, caplog, label_mode):
    clean = _write_root(tmp_path, shared_datasets, DOCTOR)
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        train = D.load_split(_cfg(tmp_path, label_mode=label_mode), "train")
        val = D.load_split(_cfg(tmp_path, label_mode=label_mode), "val")
    warning = [r.getMessage() for r in caplog.records if "unusable votes" in r.getMessage()][0]
    assert "skipping 5 row(s)" in warning and "2 non-numeric" in warning
    assert "1 negative" in warning and "2 no votes" in warning
    assert str(tmp_path / "ferplus" / "fer2013new.csv") in warning

    # oracle: the untouched votes of the real file, by column name, and the real FER2013 pixels
    joined = clean[clean["Image name"].notna()].reset_index(drop=True)
    votes = joined[VOTES].to_numpy(np.float64)
    majority = votes.argmax(1)
    names = class_names(8)
    bad = set(JOINED.values())
    with gzip.open(shared_datasets / "fer2013" / "fer2013.csv.gz", "rt") as fh:
        pixels = pd.read_csv(fh, nrows=N_FER)["pixels"]
    for fs, rows in ((train, range(PUBLIC_FROM)), (val, range(PUBLIC_FROM, N_FER))):
        expected = [r for r in rows if r not in bad and majority[r] < 8]
        assert fs.ids.tolist() == expected
        assert fs.skipped_bad_rows == len(bad & set(rows))
        assert D.describe(fs)["skipped_bad_rows"] == fs.skipped_bad_rows
        for i, r in enumerate(fs.ids):
            assert np.array_equal(fs.images[i].ravel(), np.array(pixels[r].split(), dtype=np.uint8))
            assert names[fs.labels[i]] == canonical(VOTES[majority[r]])
            if label_mode == "soft":
                emotion = {canonical(c): v for c, v in zip(FERPLUS_VOTE_COLUMNS, votes[r, :8], strict=True)}
                target = np.array([emotion[n] for n in names]) / votes[r, :8].sum()
                np.testing.assert_allclose(fs.targets[i], target, rtol=1e-6)
        assert np.isfinite(fs.targets).all()
    assert train.skipped_bad_rows == 4 and val.skipped_bad_rows == 1


def test_strict_rule_also_skips_bad_rows(tmp_path, shared_datasets):
    _write_root(tmp_path, shared_datasets, DOCTOR)
    fs = D.load_split(_cfg(tmp_path, ferplus_rule="strict", label_mode="soft"), "train")
    assert not set(fs.ids.tolist()) & set(JOINED.values())
    assert np.isfinite(fs.targets).all() and np.allclose(fs.targets.sum(1), 1)


def test_real_votes_have_no_bad_rows(shared_datasets, caplog):
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        plus = D.read_ferplus_votes(shared_datasets)
    assert plus.attrs["bad_vote_rows"] == 0 and not caplog.records
    assert np.isfinite(plus[VOTES].to_numpy(np.float64)).all()
