"""live page (being written)."""

import streamlit as st

from dashboard import resources

st.title("live")
resources.require("core.engine")
