"""Error explorer: a gallery per (true, predicted) cell; open an image, see why, record a verdict."""

import streamlit as st

from dashboard import PYTHON, evaluation, explorer, images, panels, verdicts, widgets
from dashboard.errors import guard
from dashboard.sidebar import current_settings

st.title("Error explorer")
ref = widgets.results_picker(upload=False, key="xp")
if ref is None:
    st.info(
        f"No results JSON yet: open one on the Evaluation page, or write one with `{PYTHON} -m training.evaluate "
        "--model default --data fer2013 --split test --out runs/eval/default-test.json`."
    )
    st.stop()
with guard("reading the results", stop=True):
    d = widgets.load_results_ref(ref)
    df = evaluation.predictions_frame(d)
    fer = images.images_for(d)  # FER2013 pixels by row id (None for folder datasets)
names = d["class_names"]
st.session_state.setdefault("xp_errors", True)
request = st.session_state.pop(widgets.EXPLORER_REQUEST_KEY, None)
if request:  # a confusion cell chosen on the Evaluation page
    st.session_state["xp_true"] = "any" if request["true"] is None else names[request["true"]]
    st.session_state["xp_pred"] = "any" if request["pred"] is None else names[request["pred"]]
    st.session_state["xp_errors"] = request["true"] is None or request["true"] != request["pred"]

c = st.columns(4)
true = c[0].selectbox("True class", ["any", *names], key="xp_true")
pred = c[1].selectbox("Predicted class", ["any", *names], key="xp_pred")
sort = c[2].selectbox("Sort by", evaluation.SORT_KEYS, key="xp_sort")
desc = c[3].toggle("Highest first", value=True, key="xp_desc")
c = st.columns([2, 2, 1])
conf = c[0].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="xp_conf")
margin = c[1].slider("Margin at most (top-1 − top-2)", 0.0, 1.0, 1.0, 0.01, key="xp_margin")
errors_only = c[2].toggle("Errors only", key="xp_errors")
index = {n: i for i, n in enumerate(names)}
flt = evaluation.CellFilter(index.get(true), index.get(pred), errors_only, *conf, margin, sort, desc)
rows = evaluation.select(df, flt)
store = verdicts.get_store()
pages = explorer.page_count(len(rows))
page = st.number_input(f"{len(rows)} images · page (of {pages})", 1, pages, key="xp_page")
panels.gallery(d, rows, fer, store.latest_by_item(evaluation.dataset_key(d)), page)

item = st.session_state.get("xp_item")
if item is not None and item < len(df):
    st.divider()
    with guard("showing the image"):
        panels.review_item(d, df.iloc[item], images.row_image(d, item, fer), store, current_settings())
st.download_button("Export all verdicts (CSV)", store.to_csv(), "ferlens-verdicts.csv", "text/csv")
