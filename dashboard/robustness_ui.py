"""Streamlit sections of the Evaluation page: robustness under corruptions, and error rates by slice.

Each section is one function of the open results dict, reading only JSON (``dashboard.robustness``); a missing
file or key gives one line with the exact command that writes it.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, robustness, widgets
from dashboard.errors import guard


def robustness_section(d: dict) -> None:
    """Accuracy or retention per corruption condition with CI whiskers, per-family retention, from a robustness
    JSON under ``runs/`` or ``bench/results`` (the one matching the results' model, data and split first)."""
    st.subheader("Robustness")
    files = robustness.find_robustness(widgets.results_roots())
    if not files:
        st.info(f"No robustness JSON yet: `{robustness.robustness_command(d)}`", icon=":material/info:")
        return
    best = robustness.matching(d, files)
    if best is None:
        st.caption(f"None matches these results; write one with `{robustness.robustness_command(d)}`.")
    index = files.index(best) if best else 0
    ref = st.selectbox("Robustness JSON", files, index=index, format_func=widgets.display_ref, key="rob_file")
    with guard("reading the robustness JSON"):
        r = robustness.load_robustness(ref)
        st.caption(robustness.summary(r))
        metric = st.radio("Show", ["accuracy", "retention"], horizontal=True, key="rob_metric")
        goal = (r.get("goal") or {}).get("mean_retention")
        reference = r["clean"]["accuracy"] if metric == "accuracy" else goal
        st.plotly_chart(charts.robustness_figure(robustness.robustness_table(r), metric, reference), key="rob_chart")
        if note := robustness.placement_note(r):
            st.caption(note)
        st.dataframe(robustness.family_table(r), hide_index=True, key="rob_families")


def slices_section(d: dict) -> None:
    """Error rate with its interval per bin of brightness, blur, head pose and mesh fit (``d["slices"]``)."""
    st.subheader("Slices")
    table = robustness.slice_table(d)
    if table is None:
        st.info(f"No slices in this file; rewrite it with `{robustness.slices_command(d)}`", icon=":material/info:")
        return
    for note in robustness.slice_notes(d):
        st.caption(note)
    st.dataframe(table, hide_index=True, key="slice_table")
