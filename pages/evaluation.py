"""evaluation page (being written)."""

import streamlit as st

from dashboard import resources

st.title("evaluation")
resources.require("core.engine")
