"""Navigation: every page has its own deep link (``/upload`` too); ``/`` forwards to the first page."""

from __future__ import annotations

from dashboard import REPO_ROOT, navigation


def test_every_page_has_a_url_path_named_after_its_file() -> None:
    paths = list(navigation.PAGES)
    assert paths[0] == "upload" and "home" not in paths
    assert sorted(f"{p}.py" for p in paths) == sorted(f.name for f in (REPO_ROOT / "pages").glob("*.py"))


def test_the_root_url_opens_the_upload_page(dashboard_env) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Upload photos"]
