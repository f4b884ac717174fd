"""Fixtures for the dashboard tests: real results JSONs on real FER2013 rows, an isolated runs folder and DB."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")


def make_results(shared_datasets: Path, seed: int, limit: int = 140) -> dict:
    """A results JSON of the (random-init) default model on ``limit`` stratified FER2013 PrivateTest rows."""
    from core.models import create_model
    from training.evaluate import evaluate_model, load_faceset

    fs = load_faceset("fer2013", "test", limit, 7, str(shared_datasets), [])
    torch.manual_seed(seed)
    model = create_model("default").eval()
    return evaluate_model(model, fs, batch_size=64, bootstrap=100, seed=seed)


@pytest.fixture(scope="session")
def results_pair(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two results files (two random inits) of the same 140 images, in their own runs folder."""
    from training.results import write_results

    root = tmp_path_factory.mktemp("runs")
    paths = []
    for seed in (0, 1):
        paths.append(write_results(make_results(shared_datasets, seed), root / "eval" / f"seed{seed}.json"))
    return paths[0], paths[1]


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_datasets: Path) -> Path:
    """An empty runs folder and verdict DB for one test; returns the runs folder."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("FERLENS_RUNS", str(runs))
    monkeypatch.setenv("FERLENS_DB", str(tmp_path / "verdicts.db"))
    monkeypatch.setenv("FERLENS_DATA", str(shared_datasets))
    return runs


@pytest.fixture
def open_page():
    """``open_page("evaluation")``: the app run once through its entry script, then switched to that page.

    ``query_params`` are the page URL's parameters (as a reload of a shared link would bring them).
    """
    from streamlit.testing.v1 import AppTest

    def _open(page: str, timeout: float = 180, query_params: dict | None = None, **state) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=timeout)
        for k, v in state.items():
            at.session_state[k] = v
        at.run()
        at = at.switch_page(f"../pages/{page}.py")
        for k, v in (query_params or {}).items():
            at.query_params[k] = v
        return at.run()

    return _open


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of this session's own (``tests.harness.postgres``); skipped without the binaries."""
    from tests.harness.postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def verdicts_db(request: pytest.FixtureRequest, tmp_path: Path):
    """A new, empty verdict database on each backend: a SQLite file path, or a PostgreSQL database URL."""
    if request.param == "sqlite":
        return tmp_path / "v.db"
    return request.getfixturevalue("postgres_server").database()
