"""Ablation: the loaded model with parts switched off, the hafem_lite ladder's knock-outs beside its retrained
rungs, what the model sees, and the ladder table."""

import streamlit as st

from core.models import available_parts
from dashboard import ablation, display_ref, drawing, resources, widgets
from dashboard.analysis import analyze_rgb
from dashboard.errors import guard
from dashboard.sidebar import current_settings, runs_dir
from training.ablate import LADDER_COMMANDS, SHIPPED_LADDER

st.title("Ablation")
resources.require("core.detector")
settings = current_settings()
engine = resources.get_engine(settings)
spec, have = engine.spec, available_parts(engine.model)
photo = st.file_uploader("A photo", type=["jpg", "jpeg", "png", "webp", "bmp"], key="abl_file")
sample = widgets.sample_file("single_face.jpg")
if photo is None and sample is None:
    st.info("Add a photo to compare the full model with its ablations on it.")
    st.stop()
data, name = (photo.getvalue(), photo.name) if photo is not None else (sample.read_bytes(), sample.name)

trained = ablation.trained_loss(engine.weights_path)
st.caption(
    f"Parts of `{spec.name}` (on = kept); its weights were trained with the "
    f"{f'`{trained}` loss' if trained else 'loss no sidecar records'}. Switches a model lacks are disabled."
)
k = spec.name  # keys per model: a switch's state must not carry over to another model
m, p = st.columns(3), st.columns(3)
sw = ablation.Switches(
    cbam=m[0].toggle("CBAM", value=have["cbam"], disabled=not have["cbam"], key=f"abl_cbam_{k}"),
    transformer=m[1].toggle(
        "Transformer", value=have["transformer"], disabled=not have["transformer"], key=f"abl_tr_{k}"
    ),
    compound_loss=m[2].toggle(
        "Compound loss",
        value=trained == "compound",
        key=f"abl_loss_{k}",
        help="How the weights were trained; the other setting needs a checkpoint trained that way.",
    ),
    align=p[0].toggle("Alignment", value=settings.align, key="abl_align"),
    clahe=p[1].toggle("CLAHE", value="clahe" in spec.preprocess, key=f"abl_clahe_{k}"),
    gamma=p[2].toggle("Adaptive gamma", value="gamma" in spec.preprocess, key=f"abl_gamma_{k}"),
)
overrides = sw.overrides(have)
checkpoint = None
if sw.compound_loss != (trained == "compound") or overrides:
    checkpoint = ablation.find_checkpoint(runs_dir(), spec.name, overrides, sw.compound_loss)
if sw.compound_loss != (trained == "compound") and checkpoint is None:
    st.warning(
        f"No checkpoint of `{spec.name}` trained {'with' if sw.compound_loss else 'without'} the compound loss "
        "under runs/: a loss cannot be removed from trained weights, so the loss switch changes nothing here. "
        "The ladder below compares rungs retrained with and without it."
    )

with guard("running the full and the ablated model", stop=True):
    from core.io import load_image

    rgb = load_image(data, name=name)
    full = analyze_rgb(resources.get_analyzer(settings), rgb, name)
    removed = sw.removed(have)
    variant_engine, note = (
        resources.get_variant_engine(settings, removed, checkpoint) if removed or checkpoint else (engine, "same model")
    )
    ablated = analyze_rgb(resources.analyzer_with(variant_engine, settings, sw.preprocess(), sw.align), rgb, name)
left, mid, right = st.columns([2, 2, 1])
left.image(drawing.displayable(full.annotated), caption="full: as configured in the sidebar", width="stretch")
mid.image(drawing.displayable(ablated.annotated), caption=f"ablated ({note})", width="stretch")
if ablated.faces:
    seen = drawing.upscale(ablated.model_inputs[0], 4 * spec.input_size)
    right.image(seen, caption=f"what the model sees: face 1 at {spec.input_size} px, 4x nearest")
table = ablation.compare_table(
    {"full": [f.probs for f in full.faces], "ablated": [f.probs for f in ablated.faces]}, engine.class_names
)
st.dataframe(table, hide_index=True)

st.subheader("Knock-out beside retrained, part by part (hafem_lite ladder)")
rungs = ablation.ladder_weights(SHIPPED_LADDER)
missing = [r for r, path in rungs.items() if path is None]
if missing:
    st.info(ablation.missing_ladder_message(SHIPPED_LADDER, missing))
elif full.faces:
    with guard("running the ladder's rungs"):
        tables = ablation.part_tables(
            rungs,
            [f.aligned.image for f in full.faces],
            lambda weights, parts: resources.get_rung_engine(str(weights), parts, settings.device),
        )
        for label, part_table in tables.items():
            st.markdown(f"**{label}**")
            st.dataframe(part_table, hide_index=True)

st.subheader("Ablation table from training")
# your own ladders under runs/ when there are any, else the committed one (the report of the rungs shown above)
reports = ablation.ablation_reports(runs_dir()) or [p for p in [SHIPPED_LADDER / "ablation.json"] if p.is_file()]
if not reports:
    st.info("No `ablation.json` yet. The hafem_lite ladder: `" + "` then `".join(LADDER_COMMANDS) + "`.")
else:
    report = st.selectbox("Report", reports, format_func=display_ref, key="abl_report")
    with guard("reading the ablation report"):
        st.markdown(ablation.report_markdown(report))
