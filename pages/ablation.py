"""Ablation: switch parts of the model and of the input pipeline off, live on one photo; the ablation table."""

import pandas as pd
import streamlit as st

from dashboard import PYTHON, ablation, drawing, resources, widgets
from dashboard.analysis import analyze_rgb
from dashboard.errors import guard
from dashboard.sidebar import current_settings, runs_dir

st.title("Ablation")
resources.require("core.detector")
settings = current_settings()
engine = resources.get_engine(settings)
spec, have = engine.spec, ablation.arch_parts(engine.spec.config)
photo = st.file_uploader("A photo", type=["jpg", "jpeg", "png", "webp", "bmp"], key="abl_file")
sample = widgets.sample_photo()
if photo is None and sample is None:
    st.info("Add a photo to compare the full model with its ablations on it.")
    st.stop()
data, name = (photo.getvalue(), photo.name) if photo is not None else (sample.read_bytes(), sample.name)

st.caption(f"Parts of `{spec.name}` (on = kept). Switches a model lacks are disabled.")
k = spec.name  # keys per model: a switch's state must not carry over to another model
m, p = st.columns(3), st.columns(3)
sw = ablation.Switches(
    cbam=m[0].toggle("CBAM", value=have["cbam"], disabled=not have["cbam"], key=f"abl_cbam_{k}"),
    transformer=m[1].toggle(
        "Transformer", value=have["transformer"], disabled=not have["transformer"], key=f"abl_tr_{k}"
    ),
    compound_loss=m[2].toggle(
        "Compound loss", value=True, key="abl_loss", help="Needs a checkpoint trained without it."
    ),
    align=p[0].toggle("Alignment", value=settings.align, key="abl_align"),
    clahe=p[1].toggle("CLAHE", value="clahe" in spec.preprocess, key=f"abl_clahe_{k}"),
    gamma=p[2].toggle("Adaptive gamma", value="gamma" in spec.preprocess, key=f"abl_gamma_{k}"),
)
overrides = sw.overrides(spec.config)
checkpoint = ablation.find_checkpoint(runs_dir(), spec.name, overrides, sw.compound_loss)
if not sw.compound_loss and checkpoint is None:
    st.warning(
        "No checkpoint of this model trained without the compound loss under runs/: the loss switch is "
        "ignored (a loss cannot be removed from a trained model)."
    )
    checkpoint = ablation.find_checkpoint(runs_dir(), spec.name, overrides, True) if overrides else None

with guard("running the full and the ablated model", stop=True):
    from core.io import load_image

    rgb = load_image(data, name=name)
    full = analyze_rgb(resources.get_analyzer(settings), rgb, name, settings.align)
    removed = sw.removed(spec.config)
    variant_engine, note = (
        resources.get_variant_engine(settings, removed, checkpoint) if removed or checkpoint else (engine, "same model")
    )
    ablated = analyze_rgb(resources.analyzer_with(variant_engine, settings, sw.preprocess()), rgb, name, sw.align)
left, right = st.columns(2)
left.image(drawing.displayable(full.annotated), caption="full: as configured in the sidebar", width="stretch")
right.image(drawing.displayable(ablated.annotated), caption=f"ablated ({note})", width="stretch")
table = pd.DataFrame(ablation.variant_table({"full": full, "ablated": ablated}, engine.class_names))
st.dataframe(table, hide_index=True)

st.subheader("Ablation table from training")
reports = ablation.ablation_reports(runs_dir())
if not reports:
    st.info(f"No `ablation.json` under runs/ yet: `{PYTHON} -m training.ablate --seeds 0 1 2 --out runs/ablation`.")
else:
    report = st.selectbox("Report", reports, format_func=widgets.display_ref, key="abl_report")
    with guard("reading the ablation report"):
        st.markdown(ablation.report_markdown(report))
