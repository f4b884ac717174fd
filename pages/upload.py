"""upload page (being written)."""

import streamlit as st

from dashboard import resources

st.title("upload")
resources.require("core.engine")
