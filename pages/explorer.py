"""Error explorer: a gallery per (true, predicted) cell; open an image, see why, record a verdict."""

import streamlit as st

from dashboard import charts, drawing, evaluation, explorer, images, resources, verdicts, widgets
from dashboard.errors import guard
from dashboard.sidebar import current_settings

st.title("Error explorer")
ref = widgets.results_picker(upload=False, key="xp")
if ref is None:
    st.info("No results JSON yet: open one on the Evaluation page, or write one with `python -m training.evaluate`.")
    st.stop()
with guard("reading the results", stop=True):
    d = widgets.load_results_ref(ref)
    df = evaluation.predictions_frame(d)
    fer = images.images_for(d)  # FER2013 pixels by row id (None for folder datasets)
names, dataset = d["class_names"], evaluation.dataset_key(d)
st.session_state.setdefault("xp_errors", True)
request = st.session_state.pop(widgets.EXPLORER_REQUEST_KEY, None)
if request:  # a confusion cell chosen on the Evaluation page
    st.session_state["xp_true"] = "any" if request["true"] is None else names[request["true"]]
    st.session_state["xp_pred"] = "any" if request["pred"] is None else names[request["pred"]]
    st.session_state["xp_errors"] = request["true"] is None or request["true"] != request["pred"]

c1, c2, c3, c4 = st.columns(4)
true = c1.selectbox("True class", ["any", *names], key="xp_true")
pred = c2.selectbox("Predicted class", ["any", *names], key="xp_pred")
sort = c3.selectbox("Sort by", evaluation.SORT_KEYS, key="xp_sort")
desc = c4.toggle("Highest first", value=True, key="xp_desc")
c5, c6, c7 = st.columns([2, 2, 1])
lo, hi = c5.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="xp_conf")
margin = c6.slider("Margin at most (top-1 − top-2)", 0.0, 1.0, 1.0, 0.01, key="xp_margin")
errors_only = c7.toggle("Errors only", key="xp_errors")
flt = evaluation.CellFilter(
    None if true == "any" else names.index(true),
    None if pred == "any" else names.index(pred),
    errors_only,
    lo,
    hi,
    margin,
    sort,
    desc,
)
rows = evaluation.select(df, flt)
store = verdicts.get_store()
reviewed = store.latest_by_item(dataset)
page = st.number_input(
    f"{len(rows)} images · page (of {explorer.page_count(len(rows))})", 1, explorer.page_count(len(rows)), key="xp_page"
)
grid = st.columns(8)
for k, (idx, row) in enumerate(explorer.page_rows(rows, page).iterrows()):
    with grid[k % 8]:
        with guard(f"loading image {row['id']}"):
            st.image(drawing.upscale(images.row_image(d, idx, fer), 96), width="stretch")
        badge = f" · {reviewed[row['id']].verdict}" if row["id"] in reviewed else ""
        st.caption(f"#{row['id']} {row['true_name']}→{row['pred_name']} {row['confidence']:.0%}{badge}")
        if st.button("Open", key=f"xp_open_{row['id']}", width="stretch"):
            st.session_state["xp_item"] = int(idx)

item = st.session_state.get("xp_item")
if item is not None and item < len(df):
    row = df.iloc[item]
    st.divider()
    st.subheader(f"Image #{row['id']}: labelled {row['true_name']}, predicted {row['pred_name']}")
    img = images.row_image(d, item, fer)
    left, mid, right = st.columns([1, 1, 2])
    left.image(drawing.upscale(img, 240), caption="as in the dataset", width="stretch")
    right.plotly_chart(charts.probability_bar(row["probs"], names, "model's probabilities"), key="xp_probs")
    settings, note = explorer.engine_settings_for(d, current_settings())
    if not resources.missing_feature("core.engine") and not resources.missing_feature("core.explain.cam"):
        with mid, guard("explaining the image"):
            from dashboard.explain import explain_crop

            engine = resources.get_engine(settings)
            ex = explain_crop(engine, img, settings.explainer, target=int(row["pred"]))
            shown = drawing.heat_overlay(drawing.upscale(img, 240), ex.heat)
            st.image(shown, caption=f"{ex.method} for '{names[ex.target]}'", width="stretch")
            st.caption(note)
    with st.form("xp_verdict", clear_on_submit=True):
        verdict = st.radio("Verdict", verdicts.VERDICTS, horizontal=True, key="xp_v")
        note_text = st.text_area("Note", key="xp_note")
        reviewer = st.text_input("Reviewer", value=st.session_state.get("reviewer", ""), key="xp_reviewer")
        if st.form_submit_button("Save verdict", icon=":material/save:"):
            with guard("saving the verdict"):
                saved = store.add(
                    verdicts.Verdict(
                        dataset=dataset,
                        item_id=int(row["id"]),
                        verdict=verdict,
                        reviewer=reviewer,
                        true_label=row["true_name"],
                        pred_label=row["pred_name"],
                        note=note_text,
                        model=evaluation.model_key(d),
                        confidence=float(row["confidence"]),
                    )
                )
                st.session_state["reviewer"] = saved.reviewer
                st.success(f"Saved: {saved.verdict} by {saved.reviewer}")
    st.dataframe(explorer.verdict_rows(store.for_item(dataset, int(row["id"]))), hide_index=True, key="xp_history")

st.download_button(
    "Export all verdicts (CSV)", store.to_csv(), "ferlens-verdicts.csv", "text/csv", icon=":material/download:"
)
