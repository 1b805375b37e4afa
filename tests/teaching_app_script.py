"""The teaching page on its own, for the teaching tests (AppTest and the browser test).

``streamlit run tests/teaching_app_script.py`` imports this file once to find ``app`` (an
``st.App`` with the player's frame route, as ``app.py`` does), then runs it as the page script.
``MSUS_SAMPLES_DIR`` points at the samples to offer as cases.
"""

import os

import streamlit as st

if __name__ != "__main__":  # imported by the server: the ASGI app with the frame route
    from msus.ui import frames

    app = st.App(__file__, routes=frames.routes())
else:
    from msus.ui import teaching_page

    st.set_page_config(page_title="msus · teaching", layout="wide")
    teaching_page.render(
        samples_dir=os.environ.get("MSUS_SAMPLES_DIR") or None,
        use_player=os.environ.get("MSUS_TEACHING_PLAYER", "1") != "0",
    )
