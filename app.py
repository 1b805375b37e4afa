"""msus review app (Streamlit). Wires the library together; holds no image processing.

``streamlit run app.py`` imports this file once as a module to find ``app`` (an ``st.App`` that
adds the frame route the browser player fetches JPEG frames from), then runs it as the page
script (``__name__ == "__main__"``) for every session rerun.  The script sets the page up and
hands over to Streamlit's multipage navigation: Worklist · Review · Teaching (one small page
script each under ``msus/ui/pages/``; their code lives in ``msus.ui.worklist_page``,
``msus.ui.review_page`` and ``msus.ui.teaching_page``).
"""

import streamlit as st

from msus.errors import MsusError
from msus.logs import configure
from msus.ui import frames


def _log_setup() -> str | None:
    """Configure the log once (``MSUS_LOG_LEVEL``, ``MSUS_LOG``); a bad setting is one line."""
    try:
        configure(app=True)
    except MsusError as e:
        return str(e)
    return None


if __name__ != "__main__":  # imported by the server: the ASGI app with the frame route
    _log_setup()
    app = st.App(__file__, routes=frames.routes())


def page() -> None:
    from msus.ui import navigation, panels
    from msus.ui.text import md

    st.set_page_config(page_title="msus · cine review", layout="wide")
    problem = _log_setup()
    if problem:
        st.error(md(problem))
    panels.page_style()
    navigation.keep_open_widgets()  # the sidebar's open choice survives a visit to another page
    st.navigation(navigation.pages(), position="top").run()


if __name__ == "__main__":
    page()
