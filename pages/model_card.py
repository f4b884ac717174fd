"""Model card: what the model is, how it was trained, what ferlens measured, what the papers claimed, limits."""

import streamlit as st

from dashboard import PYTHON, display_ref, model_card, resources, runnable, widgets
from dashboard.errors import guard
from dashboard.sidebar import current_settings

st.title("Model card")
resources.require("core.engine")
settings = current_settings()
with guard("loading the model", stop=True):
    engine = resources.get_engine(settings)
spec = engine.spec
if model_card.MODEL_CARD_DOC.is_file():
    with st.expander("docs/model-card.md", expanded=True):
        st.markdown(model_card.MODEL_CARD_DOC.read_text())

st.subheader(f"`{spec.name}`: {spec.paper or 'ferlens model'}")
c = st.columns(4)
c[0].metric("Parameters", f"{model_card.parameter_count(engine.model) / 1e6:.2f} M", help="counted on the loaded model")
c[1].metric("Input", f"{spec.in_chans}×{spec.input_size}×{spec.input_size}")
c[2].metric("Classes", spec.num_classes, help=", ".join(spec.class_names))
c[3].metric("Preprocessing", ", ".join(spec.preprocess) or "none")
st.caption(f"Weights: {engine.weights_status}")
with st.expander("Configuration (the model's config dataclass)"):
    st.json(spec.config)

sha, meta = None, {}
if engine.weights_path is not None:
    with guard("reading the weights' sidecar"):
        from core.models.weights import read_meta
        from training.evaluate import sha256_file

        meta, sha = read_meta(engine.weights_path), sha256_file(engine.weights_path)
        if meta.get("command"):
            st.markdown("**Training command**")
            st.code(runnable(meta["command"]), language="bash")
        if meta.get("val"):
            st.markdown(f"**Validation (PublicTest) at the saved epoch ({meta.get('epoch', '?')})**")
            st.dataframe(model_card.validation_table(meta["val"]), hide_index=True)

results = []
for ref in widgets.results_options()[:50]:
    with guard(f"reading {display_ref(ref)}"):
        results.append(widgets.load_results_ref(ref))
st.subheader("Test scores (95 % bootstrap CIs)")
scores = model_card.all_scores(meta, results, spec.name, sha)
if scores.empty:
    st.info(
        f"No score of {spec.name} with these weights yet. Measure one with `{PYTHON} -m training.evaluate "
        f"--model {spec.name} --weights {display_ref(engine.weights_path or 'none')} --data fer2013 "
        f"--split test --out runs/eval/{spec.name}-test.json`."
    )
else:
    st.dataframe(scores, hide_index=True, width="stretch")
    st.caption(
        "Each row: data and split, test-time augmentation, weights (file and sha256). Rows recorded by "
        "`training.ship` always stay; every results file under runs/ of these weights adds its own."
    )

st.subheader("The papers' claims and what ferlens measured")
st.dataframe(model_card.claims_table(results), hide_index=True, width="stretch")
st.caption(
    "Claims are quoted from the papers (docs/papers.md). Measurements come only from results files of "
    "trained weights; random-init evaluations are never counted."
)

st.subheader("Limitations")
st.markdown(model_card.LIMITATIONS)
