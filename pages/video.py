"""video page (being written)."""

import streamlit as st

from dashboard import resources

st.title("video")
resources.require("core.engine")
