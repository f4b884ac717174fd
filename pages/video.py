"""Video: every face tracked through a clip, an emotion timeline per track, any frame explained."""

import streamlit as st

from dashboard import charts, panels, resources, video, widgets
from dashboard.analysis import analyze_rgb, explain_face
from dashboard.errors import guard
from dashboard.sidebar import current_settings

st.title("Video")
resources.require("core.detector")
settings = current_settings()
upload = st.file_uploader("A video clip", type=video.VIDEO_TYPES, key="vid_file")
skip = st.number_input("Frames skipped between analysed frames", 0, 30, 2, key="vid_skip")
example = widgets.try_example("single_face.mp4", "Try an example: a short clip", key="vid_example")
clip_name, clip_data = (upload.name, upload.getvalue()) if upload is not None else example or (None, None)
if clip_name is None:
    st.info("Add a short clip (up to the upload limit). Faces are tracked; probabilities are smoothed per track.")
    st.stop()
with guard("reading the clip", stop=True):
    path = video.spool(clip_data, clip_name)
key = (str(path), settings, int(skip))
if st.session_state.get("vid_key") != key:
    bar = st.progress(0.0, text="Analysing…")
    with guard("analysing the video", stop=True), video.named_as(path, clip_name):
        table = resources.get_analyzer(settings).detect_video(
            path,
            skip_frames=int(skip),
            progress=lambda done, total: bar.progress(done / total, f"frame {done}/{total}"),
        )
    bar.empty()
    st.session_state.update(vid_key=key, vid_table=table, vid_mp4=None)
table = st.session_state["vid_table"]
names = list(resources.get_engine(settings).class_names)
st.subheader(f"{clip_name}: {table['frame'].nunique()} frames with faces, {table['track'].nunique()} track(s)")
if table.empty:
    st.info("No face in this clip.")
    st.stop()
st.dataframe(video.track_summary(table, names), hide_index=True, column_config=video.summary_columns(names))
for track in sorted(table["track"].unique())[:6]:
    st.plotly_chart(charts.timeline_figure(table[table["track"] == track], names, track), key=f"vid_tl{track}")
c1, c2 = st.columns(2)
c1.download_button("Per-frame CSV", table.to_csv(index=False), f"{clip_name}-ferlens.csv", "text/csv")
if st.session_state.get("vid_mp4") is None and c2.button("Make the annotated video (MP4)", key="vid_annotate"):
    bar = st.progress(0.0, text="Drawing the faces on every frame…")
    with guard("making the annotated video"), video.named_as(path, clip_name):
        out = path.with_name(f"{path.stem}-annotated-{int(skip)}.mp4")
        video.annotate(path, table, out, hold=int(skip) + 1, progress=lambda d, t: bar.progress(d / t))
        st.session_state["vid_mp4"] = out.read_bytes()
    bar.empty()
if st.session_state.get("vid_mp4") is not None:
    c2.download_button(
        "Annotated video (MP4)", st.session_state["vid_mp4"], f"{clip_name}-ferlens.mp4", "video/mp4", key="vid_mp4_dl"
    )

st.subheader("Explain one frame")
frames = sorted(table["frame"].unique().tolist())
frame = st.select_slider("Frame", frames, key="vid_frame")
explain = st.toggle(f"Explain the faces ({settings.explainer})", key="vid_explain")
with guard(f"analysing frame {frame}"):
    rgb = video.read_frame(path, int(frame))
    analyzer = resources.get_analyzer(settings)
    result = analyze_rgb(analyzer, rgb, f"frame {frame}")
    fn = (lambda i: explain_face(analyzer, rgb, result.faces[i], settings.explainer)) if explain else None
    panels.image_result(result, key="vid_f", explain=fn)
