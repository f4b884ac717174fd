"""Upload: photos in; every face boxed, numbered, classified and, on request, explained."""

import streamlit as st

from dashboard import panels, resources
from dashboard.errors import guard
from dashboard.sidebar import current_settings

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]

st.title("Upload photos")
resources.require("core.detector")
settings = current_settings()
files = st.file_uploader("Photos", type=IMAGE_TYPES, accept_multiple_files=True, key="up_files")
explain = st.toggle(
    f"Explain each face ({settings.explainer}, with AU regions and their FACS agreement)",
    key="up_explain",
    help="The method is chosen in the sidebar. CAMs take well under a second per face on a CPU, region SHAP a few "
    "seconds, pixel SHAP tens of seconds.",
)
if not files:
    st.info("Add one or more photos. Nothing leaves this machine: faces are found and classified locally.")
    st.stop()
for n, f in enumerate(files):
    data = f.getvalue()
    with guard(f"analysing {f.name}"):
        result = resources.analyze_bytes(data, f.name, settings)
        explainer = (lambda i, d=data, name=f.name: resources.explain_bytes(d, name, settings, i)) if explain else None
        panels.image_result(result, key=f"up{n}", explain=explainer)
    st.divider()
