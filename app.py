"""msus review app (Streamlit). Wires the library together; holds no image processing."""

import streamlit as st

st.set_page_config(page_title="msus", layout="wide")
st.title("msus — MSK ultrasound cine review")
st.info("The viewer is being built.")
