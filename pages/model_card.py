"""model_card page (being written)."""

import streamlit as st

from dashboard import resources

st.title("model_card")
resources.require("core.engine")
