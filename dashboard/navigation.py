"""The dashboard's pages, in menu order: one table, so the entry script and ``st.switch_page`` agree."""

from __future__ import annotations

from dashboard import PAGES_DIR

PAGES: dict[str, tuple[str, str]] = {
    "upload": ("Upload", ":material/photo_library:"),
    "live": ("Live webcam", ":material/videocam:"),
    "video": ("Video", ":material/movie:"),
    "evaluation": ("Evaluation", ":material/analytics:"),
    "explorer": ("Error explorer", ":material/rate_review:"),
    "ablation": ("Ablation", ":material/tune:"),
    "model_card": ("Model card", ":material/description:"),
}
"""URL path (also the page's file name under ``pages/``) -> (title, icon)."""
FIRST = next(iter(PAGES))


def page(name: str):
    """The ``st.Page`` for ``name`` (a url path such as ``"explorer"``), e.g. for ``st.switch_page``.

    No listed page is the default: Streamlit serves its default page at ``/`` only, so ``/upload`` would
    say "Page not found". :func:`home` is the default and forwards to the first page.
    """
    import streamlit as st

    if name not in PAGES:
        raise ValueError(f"unknown page {name!r}; choose one of {list(PAGES)}")
    title, icon = PAGES[name]
    return st.Page(PAGES_DIR / f"{name}.py", title=title, icon=icon, url_path=name)


def _forward_to_first_page() -> None:
    import streamlit as st

    st.switch_page(page(FIRST))


def home():
    """The hidden default page at ``/``: it forwards to the first page, so every page has its own deep link."""
    import streamlit as st

    return st.Page(_forward_to_first_page, title=PAGES[FIRST][0], url_path="home", default=True, visibility="hidden")


def all_pages() -> list:
    return [home(), *map(page, PAGES)]
