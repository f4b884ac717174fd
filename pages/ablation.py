"""ablation page (being written)."""

import streamlit as st

from dashboard import resources

st.title("ablation")
resources.require("core.engine")
