"""Page sections: an analysed photo with its faces, one face's explanation, live metrics, and the Evaluation page's
robustness and slices.

Rendering only; the numbers come from ``dashboard.analysis`` and ``dashboard.robustness`` (which reads JSON only: a
missing file or key gives one line with the command that writes it). Each function draws one self-contained block.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from dashboard import charts, display_ref, drawing, robustness, widgets
from dashboard.analysis import DISPLAY_SIZE, ImageAnalysis, photo_overlay
from dashboard.errors import guard
from dashboard.explain import PIXEL_METHODS, available_methods
from dashboard.explain_quality import COMMAND, faithfulness_line, legend_bar, legend_text, load_explanations
from dashboard.sidebar import select_on


def faces_heading(result: ImageAnalysis) -> None:
    n = len(result.faces)
    st.subheader(f"{result.name}: {n} face{'s' if n != 1 else ''}")
    if not result.aligned:
        st.caption("Alignment is off: each face is its plain square box (an ablation of the 5-point alignment).")


def downloads(result: ImageAnalysis, key: str, overlay=None) -> None:
    stem = Path(result.name).stem
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Annotated PNG", drawing.to_png(result.annotated), f"{stem}-ferlens.png", "image/png", key=f"{key}_png"
    )
    c2.download_button(
        "Faces CSV", result.table.to_csv(index=False), f"{stem}-ferlens.csv", "text/csv", key=f"{key}_csv"
    )
    if overlay is not None:
        c3.download_button(
            "Explanation PNG", drawing.to_png(overlay), f"{stem}-explained.png", "image/png", key=f"{key}_xpng"
        )


def image_result(
    result: ImageAnalysis,
    key: str,
    explain: Callable[[int], object] | None = None,
    compare: Callable[[int, str], object] | None = None,
) -> None:
    """An analysed photo: heading, the annotated photo (and its explanation), then one row per face.

    ``key`` prefixes this photo's widget keys. ``explain(face_index)`` and ``compare(face_index, method)`` return a
    ``FaceExplanation``: the first when explanations are on, the second offers every method side by side per face.
    """
    faces_heading(result)
    if not result.faces:
        st.info("No face found. Faces smaller than about 20 pixels, strong profiles and heavy occlusion are missed.")
        st.image(drawing.displayable(result.rgb), width="stretch")
        return
    explanations = [explain(i) for i in range(len(result.faces))] if explain else None
    overlay = photo_overlay(result.rgb, result.faces, explanations) if explanations else None
    if overlay is not None:
        left, right = st.columns(2)
        left.image(drawing.displayable(result.annotated), caption="faces", width="stretch")
        right.image(
            drawing.displayable(overlay),
            caption=f"{explanations[0].method} on the photo, AU regions outlined",
            width="stretch",
        )
    else:
        st.image(drawing.displayable(result.annotated), width="stretch")
    downloads(result, key, overlay)
    quality = load_explanations() if explanations else None
    for i, face in enumerate(result.faces):
        face_row(result, i, face, explanations[i] if explanations else None, key, quality)
        if compare is not None:
            compare_methods(lambda m, i=i: compare(i, m), quality, key=f"{key}_cmp{i}")


def face_row(result: ImageAnalysis, i: int, face, explanation, key: str, quality: dict | None = None) -> None:
    st.markdown(f"**Face #{i + 1}: {face.label}** ({face.score:.0%}) · detector score {face.face.score:.2f}")
    cols = st.columns([1, 2, 1, 2] if explanation else [1, 2])
    seen = result.model_inputs[i]
    size = "×".join(map(str, seen.shape[:2]))
    tone = "gray" if seen.ndim == 2 else "colour"
    caption = f"what the model sees: its {size} {tone} input, enlarged pixel for pixel"
    cols[0].image(drawing.upscale(seen, DISPLAY_SIZE), caption=caption, width="stretch")
    cols[1].plotly_chart(charts.probability_bar(face.probs, result.class_names), key=f"{key}_bar{i}")
    if explanation:
        explanation_block(explanation, cols[2], cols[3], key=f"{key}_x{i}", quality=quality)


def map_with_legend(ex, col) -> None:
    """A face's map, and under it the colour bar it was drawn with and what low/high (and, for SHAP, the sign) mean."""
    col.image(ex.crop_overlay, caption=f"{ex.method} for '{ex.target}'", width="stretch")
    col.image(legend_bar(ex.signed), caption=legend_text(ex.method, ex.target, ex.signed, ex.map), width="stretch")


def explanation_block(ex, image_col, table_col, key: str, quality: dict | None = None) -> None:
    """A face's overlay with AU outlines and colour legend, how much of the map falls where FACS expects the
    class, and how faithful the method measured on test faces."""
    map_with_legend(ex, image_col)
    table_col.caption(faithfulness_line(quality, ex.method))
    s = ex.summary
    lift = "n/a" if s["lift"] != s["lift"] else f"{s['lift']:.2f}"
    table_col.caption(
        f"FACS expects for **{s['class']}**: {s['expected']}. Lift {lift} (1 = chance: share of the map in the "
        f"expected regions / their area); densest region: {s['top_region']}."
    )
    if ex.regions_note:
        table_col.caption(("⚠ " if ex.regions_fallback else "") + ex.regions_note)
    table_col.dataframe(
        ex.agreement,
        hide_index=True,
        height=220,
        key=key,
        column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("share", "density", "area")},
    )


def compare_methods(explain: Callable[[str], object], quality: dict | None, key: str) -> None:
    """A toggle that draws one face explained by several methods in columns, each with legend and faithfulness."""
    if not st.toggle("Compare explanation methods side by side", key=f"{key}_on"):
        return
    methods = available_methods()
    chosen = st.multiselect(
        "Methods",
        methods,
        default=[m for m in methods if m not in PIXEL_METHODS],
        key=f"{key}_methods",
        help="Pixel SHAP takes tens of seconds per face on a CPU, so it is left out unless picked.",
    )
    for col, method in zip(st.columns(max(len(chosen), 1)), chosen, strict=False):
        ex = explain(method)
        map_with_legend(ex, col)
        col.caption(faithfulness_line(quality, method))


def explanation_quality(key: str = "xq") -> None:
    """Evaluation-page section: the faithfulness ranking and per-class AU agreement of every explanation
    method, as ``python -m training.explain_eval`` measured them (read from its JSON, nothing computed)."""
    from training.explain_eval import au_table, faithfulness_table, lift_matrix, random_table

    with st.expander("Which explanation to believe: faithfulness and FACS agreement of each method"):
        d = load_explanations()
        if d is None:
            st.info(
                f"No explanation benchmark yet: write it with `{COMMAND}` (minutes on an idle 2-core CPU).",
                icon=":material/info:",
            )
            return
        m = d["meta"]
        st.caption(
            f"`{m['model']}` on {m['n_images']} {m['data']} {m['split']} faces ({m['per_class']} per class; pixel "
            f"SHAP on {m['n_pixel_shap']}), each map explaining the predicted class; `{m['command']}` at "
            f"`{(m['git_commit'] or '?')[:10]}`, {m['date']}. Brackets: 95 % bootstrap CIs over faces."
        )
        st.markdown("**Faithfulness**, most faithful first (deletion: lower is better; insertion: higher)")
        st.dataframe(faithfulness_table(d), hide_index=True, key=f"{key}_faith")
        st.dataframe(random_table(d), hide_index=True, key=f"{key}_random")
        st.markdown("**AU agreement**: share of each map in the regions FACS expects for the class, and its lift")
        st.dataframe(lift_matrix(d), hide_index=True, key=f"{key}_lift")
        method = st.selectbox("Per-class detail for", d["ranking"], key=f"{key}_method")
        st.dataframe(au_table(d, method), hide_index=True, key=f"{key}_au")


def live_metrics(stats) -> None:
    """Processed frames per second, latency and camera rate (``dashboard.live.LiveStats``), two metrics a row to fit
    the narrow column beside the video."""

    def fmt(v, spec):
        return "…" if v is None else format(v, spec)

    c1, c2 = st.columns(2)
    c1.metric("Predictions / s", fmt(stats.processed_fps, ".1f"))
    c2.metric("Latency (ms)", fmt(stats.latency_ms, ".0f"), help=f"p95 {fmt(stats.latency_p95_ms, '.0f')} ms")
    c3, c4 = st.columns(2)
    c3.metric("Camera frames / s", fmt(stats.camera_fps, ".1f"))
    dropped = stats.dropped / stats.received if stats.received else 0.0
    c4.metric("Frames skipped", f"{dropped:.0%}", help="Frames replaced by a newer one before the model got to them.")
    st.caption(
        f"latency median {fmt(stats.latency_median_ms, '.0f')} ms · latency p95 {fmt(stats.latency_p95_ms, '.0f')} ms"
        f" · CPU callback {fmt(stats.callback_cpu_ms, '.1f')} ms per camera frame, worker"
        f" {fmt(stats.worker_cpu_ms, '.1f')} ms per analysed frame · {stats.processed} of {stats.received} camera"
        " frames analysed (the rest were replaced by newer ones while the model was busy)"
    )


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
    ref = select_on(st, "Robustness JSON", files, best, "rob_file", format_func=display_ref)
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
