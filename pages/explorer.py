"""Error explorer: a gallery per (true, predicted) cell, filters kept in the URL, a review dialog with verdicts."""

from dataclasses import replace

import streamlit as st

from dashboard import PYTHON, evaluation, explorer, explorer_ui, images, verdicts, widgets
from dashboard.errors import guard
from dashboard.sidebar import current_settings
from training.slices import row_bins

st.title("Error explorer")
explorer_ui.results_from_url(widgets.results_options())
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
with guard("opening the verdict store", stop=True):
    store = verdicts.get_store()
    reviewed = store.latest_by_item(evaluation.dataset_key(d))
review = None  # FERPlus votes and duplicates, for FER2013/FERPlus results
with guard("reading the FERPlus votes and duplicates"):
    review = explorer_ui.review_flags(d, df)
flags = review[0] if review is not None else None

explorer_ui.seed_from_url(names)
if flash := st.session_state.pop(explorer_ui.FLASH_KEY, None):
    st.toast(flash, icon=":material/check:")
bins = row_bins(d)  # brightness / blur bin of each image, when the results hold slices
view = explorer_ui.view_controls(names, has_votes=flags is not None, bins=bins)
rows = explorer.select(df, view, reviewed, flags, bins)
pages = explorer.page_count(len(rows))
st.session_state["xp_page"] = min(int(st.session_state.get("xp_page") or 1), pages)
page = st.number_input(f"{len(rows)} images · page (of {pages})", 1, pages, key="xp_page")
explorer_ui.gallery(d, rows, fer, reviewed, page, flags)
item = st.session_state.get(explorer_ui.ITEM_KEY)
explorer_ui.write_url(replace(view, page=int(page), item=item), ref)
if item is not None:
    ids = [int(i) for i in rows["id"]]
    explorer_ui.review_dialog(d, df, ids, int(item), fer, store, current_settings(), review)
explorer_ui.agreement_panel(d, store)
explorer_ui.exports(d, store, fer_results=review is not None)
