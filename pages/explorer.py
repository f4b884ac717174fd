"""explorer page (being written)."""

import streamlit as st

from dashboard import resources

st.title("explorer")
resources.require("core.engine")
