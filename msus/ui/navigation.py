"""The app's pages (Streamlit multipage navigation) and what must survive moving between them.

``pages()`` lists Worklist · Review · Teaching (Teaching only when the teaching page is
installed).  Review is the default page (the root URL opens the player).  Each page is a
two-line script under ``msus/ui/pages/`` (paths relative to ``app.py``) so that
``AppTest.switch_page`` and ``st.switch_page`` can name it.
"""

from __future__ import annotations

import streamlit as st

WORKLIST = "msus/ui/pages/worklist.py"
REVIEW = "msus/ui/pages/review.py"
TEACHING = "msus/ui/pages/teaching.py"

#: Sidebar widgets of the Review page whose value must outlive a visit to another page
#: (Streamlit forgets the state of widgets a run does not draw).  Uploads cannot be re-set
#: this way; the open upload is kept in ``msus_source`` instead.
OPEN_KEYS = ("msus_open_kind", "msus_sample", "msus_path_pick")


def pages() -> list:
    return [
        st.Page(WORKLIST, title="Worklist", icon=":material/list_alt:", url_path="worklist"),
        st.Page(REVIEW, title="Review", icon=":material/play_circle:", url_path="review", default=True),
        st.Page(TEACHING, title="Teaching", icon=":material/school:", url_path="teaching"),
    ]


def keep_open_widgets() -> None:
    """Re-assign the open panel's widget values so a page without them does not drop them."""
    for k in OPEN_KEYS:
        if k in st.session_state:
            st.session_state[k] = st.session_state[k]


def go_review() -> None:
    """Switch to the Review page (call in a page script, not in a widget callback)."""
    st.switch_page(REVIEW)
