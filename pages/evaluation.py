"""Evaluation: one results JSON as confusion matrix, per-class scores with CIs, ROC, reliability; two compared."""

import streamlit as st

from dashboard import PYTHON, charts, display_ref, evaluation, panels, widgets
from dashboard.errors import guard

st.title("Evaluation")
st.caption(f"Results JSONs written by `{PYTHON} -m training.evaluate` (format: `docs/results-schema.md`).")
panels.explanation_quality()
ref = widgets.results_picker()
if ref is None:
    st.info(
        f"No results JSON yet. Write one with `{PYTHON} -m training.evaluate --model default --data fer2013 "
        "--split test --out runs/eval/default-test.json`, or open one above.",
        icon=":material/info:",
    )
    st.stop()
with guard("reading the results", stop=True):
    d = widgets.load_results_ref(ref)
names = d["class_names"]
st.caption(evaluation.describe(d))

for col, key in zip(st.columns(len(evaluation.HEADLINE)), evaluation.HEADLINE, strict=True):
    m = d["metrics"][key]
    ci = f"95 % CI [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m["ci_low"] is not None else "no CI"
    col.metric(key.replace("_", " "), "n/a" if m["value"] is None else f"{m['value']:.3f}", help=ci)
    col.caption(ci)

tab_cm, tab_pc, tab_roc, tab_rel, tab_cmp = st.tabs(["Confusion", "Per class", "ROC", "Reliability", "Compare"])
with tab_cm:
    normalized = st.toggle("Colour by row rate (counts stay in the cells)", value=True, key="cm_norm")
    fig = charts.confusion_cells(d["confusion"]["counts"], names, normalized=normalized)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="cm_chart")
    cell = charts.cell_of(event)
    if cell is not None:  # a click on a cell opens its images
        widgets.open_in_explorer(ref, *cell)
    c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="bottom")
    true = c1.selectbox("True class", names, key="cm_true")
    pred = c2.selectbox("Predicted class", names, index=min(1, len(names) - 1), key="cm_pred")
    if c3.button("Open these images in the error explorer", icon=":material/rate_review:", key="cm_open"):
        widgets.open_in_explorer(ref, names.index(true), names.index(pred))
with tab_pc:
    table = evaluation.per_class_table(d)
    if hint := evaluation.per_class_hint(d):
        st.caption(hint)
    st.plotly_chart(charts.per_class_figure(table), key="pc_chart")
    st.dataframe(table, hide_index=True, width="stretch")
with tab_roc:
    st.plotly_chart(charts.roc_figure(d["roc"]), key="roc_chart")
with tab_rel:
    st.plotly_chart(charts.reliability_figure(d["reliability"], d["metrics"]["ece"]["value"]), key="rel_chart")
with tab_cmp:
    others = widgets.comparable_results(ref, d)
    if not others:
        st.info("Open a second results JSON of the same split and classes to compare two models with McNemar's test.")
    else:
        other = st.selectbox("Compare with", others, format_func=display_ref, key="cmp_other")
        with guard("comparing the two results"):
            from training.evaluate import compare_results
            from training.model_card import result_name

            b = widgets.load_results_ref(other)
            comparison = compare_results(d, b)
            st.dataframe(evaluation.mcnemar_summary(comparison, result_name(d), result_name(b)), hide_index=True)
            st.caption(
                "A = the results above, B = this one; images matched by id. McNemar counts the images "
                "exactly one of the two gets right."
            )

panels.robustness_section(d)
panels.slices_section(d)
