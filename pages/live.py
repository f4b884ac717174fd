"""Live webcam over WebRTC: boxes on the video, labels and metrics beside it, a prediction per frame if possible."""

import queue
import time

import streamlit as st

from dashboard import live, panels, resources, widgets
from dashboard.errors import guard
from dashboard.sidebar import current_settings

st.title("Live webcam")
resources.require("core.detector", "streamlit_webrtc")
from streamlit_webrtc import WebRtcMode, webrtc_streamer  # noqa: E402

settings = current_settings()
cam = st.toggle("Grad-CAM overlay on the largest face (refreshed about once a second)", key="live_cam")
with guard("reading the ICE/TURN configuration", stop=True):
    ice, ice_source = live.ice_servers(widgets.secrets_or_none())
with guard("loading the model", stop=True):
    proc = widgets.live_processor(settings, cam)
ctx = None
video_col, info_col = st.columns([3, 2])
with video_col, guard("starting the WebRTC stream"):
    ctx = webrtc_streamer(
        key="ferlens-live",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": ice},
        media_stream_constraints={"video": live.VIDEO_CONSTRAINTS, "audio": False},
        video_frame_callback=proc.on_frame,  # a pure function of the frame: no st.* inside
        async_processing=True,
    )
st.caption(f"ICE servers: {ice_source}. The video runs at the camera's rate; each prediction uses the newest frame.")
with st.expander("The stream does not connect? Take a snapshot instead", expanded=ctx is None):
    shot = st.camera_input("Snapshot", key="live_snapshot")
    if shot is not None:
        with guard("analysing the snapshot"):
            panels.image_result(resources.analyze_bytes(shot.getvalue(), "snapshot.jpg", settings), key="snap")

if ctx is not None and ctx.state.playing:
    labels, metrics, shown = info_col.empty(), info_col.empty(), 0.0
    while ctx.state.playing:
        try:
            result = proc.results.get(timeout=1.0)
        except queue.Empty:
            if proc.error:
                labels.error(f"The live pipeline failed: {proc.error}")
            continue
        if time.monotonic() - shown < 0.25:  # the page text needs no more than 4 updates a second
            continue
        shown = time.monotonic()
        lines = result.summary() or ["no face in view"]
        labels.markdown("\n".join(f"- **{line}**" for line in lines))
        with metrics.container():
            panels.live_metrics(result.stats)
