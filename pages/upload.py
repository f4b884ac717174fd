"""Upload: photos, a folder or ZIPs of photos in; every face boxed, numbered, classified and, on request, explained."""

from dataclasses import replace

import streamlit as st

from dashboard import panels, resources, widgets
from dashboard.analysis import batch_table, expand_uploads
from dashboard.errors import guard, show_error
from dashboard.sidebar import current_settings

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]
SHOWN = 8  # photos drawn in full; a larger batch goes to the CSV, with the first ones shown

st.title("Upload photos")
resources.require("core.detector")
settings = current_settings()
folder = st.toggle("Pick a whole folder", key="up_folder", help="Every image in the folder and its subfolders.")
files = st.file_uploader(
    "Photos, or ZIP archives of photos",
    type=[*IMAGE_TYPES, "zip"],
    accept_multiple_files="directory" if folder else True,
    key="up_dir" if folder else "up_files",
)
explain = st.toggle(
    f"Explain each face ({settings.explainer}, with AU regions and their FACS agreement)",
    key="up_explain",
    help="The method is chosen in the sidebar. CAMs take well under a second per face on a CPU, region SHAP a few "
    "seconds, pixel SHAP tens of seconds.",
)
example = widgets.try_example("multi_face.jpg", "Try an example: a group photo", key="up_example")
uploads = [(f.name, f.getvalue()) for f in files or []] or ([example] if example else [])
if not uploads:
    st.info("Add photos, a folder or a ZIP of photos. Nothing leaves this machine: faces are found locally.")
    st.stop()
photos, skipped, errors = expand_uploads(uploads)
for exc in errors:
    show_error(exc, f"opening {exc.source}")
if skipped:
    with st.expander(f"{len(skipped)} file(s) in the ZIP skipped: not images"):
        st.markdown("\n".join(f"- `{line}`" for line in skipped))

bar = st.progress(0.0, text="Analysing…") if len(photos) > SHOWN else None
results = []
for k, (name, data) in enumerate(photos):
    with guard(f"analysing {name}"):
        results.append((data, resources.analyze_bytes(data, name, settings)))
    if bar is not None:
        bar.progress((k + 1) / len(photos), f"{k + 1}/{len(photos)} photos")
if bar is not None:
    bar.empty()
if len(photos) > 1:
    table = batch_table([r for _, r in results])
    st.subheader(f"{len(photos)} photos: {len(table)} faces")
    st.download_button("Faces CSV (all photos)", table.to_csv(index=False), "ferlens-faces.csv", "text/csv")
    if len(results) > SHOWN:
        st.caption(f"The first {SHOWN} photos are drawn below; every face of every photo is in the CSV.")
for n, (data, result) in enumerate(results[:SHOWN]):
    with guard(f"drawing {result.name}"):

        def explained(i, method=settings.explainer, data=data, name=result.name):
            return resources.explain_bytes(data, name, replace(settings, explainer=method), i)

        fn = explained if explain else None
        panels.image_result(result, key=f"up{n}", explain=fn, compare=fn)
    st.divider()
