"""The dashboard's pages, in menu order: one table, so the entry script and ``st.switch_page`` agree."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard import PAGES_DIR


@dataclass(frozen=True)
class PageInfo:
    file: str
    title: str
    icon: str
    url_path: str


PAGES: tuple[PageInfo, ...] = (
    PageInfo("upload.py", "Upload", ":material/photo_library:", "upload"),
    PageInfo("live.py", "Live webcam", ":material/videocam:", "live"),
    PageInfo("video.py", "Video", ":material/movie:", "video"),
    PageInfo("evaluation.py", "Evaluation", ":material/analytics:", "evaluation"),
    PageInfo("explorer.py", "Error explorer", ":material/rate_review:", "explorer"),
    PageInfo("ablation.py", "Ablation", ":material/tune:", "ablation"),
    PageInfo("model_card.py", "Model card", ":material/description:", "model_card"),
)


def page(name: str):
    """The ``st.Page`` for ``name`` (a url path such as ``"explorer"``), e.g. for ``st.switch_page``.

    No listed page is the default: Streamlit serves its default page at ``/`` only, so ``/upload`` would
    say "Page not found". :func:`home` is the default and forwards to the first page.
    """
    import streamlit as st

    for info in PAGES:
        if info.url_path == name:
            return st.Page(PAGES_DIR / info.file, title=info.title, icon=info.icon, url_path=info.url_path)
    raise ValueError(f"unknown page {name!r}; choose one of {[p.url_path for p in PAGES]}")


def _forward_to_first_page() -> None:
    import streamlit as st

    st.switch_page(page(PAGES[0].url_path))


def home():
    """The hidden default page at ``/``: it forwards to the first page, so every page has its own deep link."""
    import streamlit as st

    return st.Page(_forward_to_first_page, title=PAGES[0].title, url_path="home", default=True, visibility="hidden")


def all_pages() -> list:
    return [home(), *(page(info.url_path) for info in PAGES)]
