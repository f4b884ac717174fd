"""ferlens dashboard entry point: ``streamlit run dashboard/app.py`` (``make run``).

The frame around every page: page config, navigation, the sidebar (model, weights, face detector,
preprocessing, explanation method), the random-weights banner, and one error guard around the page, so that
nothing a page raises reaches the browser as a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/ on the path, not the repo root
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import errors, navigation, resources, sidebar  # noqa: E402

st.set_page_config(page_title="ferlens", page_icon=":material/sentiment_satisfied:", layout="wide")
errors.configure_logging()

current = st.navigation(navigation.all_pages())
with errors.guard("building the sidebar"):
    settings = sidebar.build_sidebar()
    resources.weights_banner(settings)
with errors.guard(f"the {current.title} page"):
    current.run()
