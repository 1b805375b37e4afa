"""Text stays text: user- and file-supplied strings shown by Streamlit or inside the app's HTML.

Streamlit interprets Markdown (with images, links, colour directives and LaTeX) in
``st.markdown``, ``st.caption``, alerts (``st.info``/``warning``/``error``/``success``),
``st.table`` cells, ``st.metric``, expander, tab, button and widget labels, radio and
segmented-control options.  A reviewer name such as ``![x](http://host/x.png)`` would make
every viewer's browser fetch that URL.  Every string that comes from a user, a file, the URL or
an error message goes through :func:`md` (Markdown) or :func:`html` (the app's own HTML snippets)
before it is shown; the app's own formatting stays outside the wrapped value::

    st.markdown(f"**{md(reviewer)}** measured {n} gaps")

``st.dataframe``, ``st.data_editor`` cells, ``st.text``, ``st.code`` and selectbox options do not
interpret Markdown and need no escaping.
"""

from __future__ import annotations

import html as _html
import re

# Characters that start Markdown constructs anywhere (links and images need "[", HTML "<", emphasis
# "*", code "`", maths "$", strike-through "~", tables "|", entities "&", directives ":x[…]").
_ALWAYS = re.compile(r"([\\`*\[\]<>$~|&])")
# "_" emphasises only at a word edge (snake_case file names stay as they are).
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Block syntax at the start of a line: headings, quotes, lists, rules, setext underlines.
_LINE_START = re.compile(r"(?m)^(\s*)([#>+=-]|\d+(?=[.)](?:\s|$)))")
# GFM autolinks (``http://…``, ``www.…``, e-mail) are found in the text *after* escapes are
# resolved: an invisible WORD JOINER (U+2060) inside the pattern keeps them plain text.
_WJ = "\u2060"
_AUTOLINK = re.compile(r"(?i)(:)(?=//)|(www)(?=\.)|(@)")


def md(value) -> str:
    """``value`` as Markdown that renders as exactly its text (line breaks kept).

    Only what could start a Markdown construct is escaped, so ordinary text (file names,
    "12.00 mm", "caliper(s)") reads the same in the source string and on screen.
    """
    s = "" if value is None else str(value)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _AUTOLINK.sub(lambda m: m.group(0) + _WJ, s)
    s = _ALWAYS.sub(r"\\\1", s)
    s = _UNDERSCORE.sub(r"\\_", s)
    s = _LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"), s)
    return s.replace("\n", "  \n")


def html(value) -> str:
    """``value`` escaped for the app's own HTML snippets (``unsafe_allow_html`` markup)."""
    return _html.escape("" if value is None else str(value), quote=True)


def md_rows(rows):
    """``st.table`` rows (a list of dicts) with every string cell passed through :func:`md`."""
    return [{k: md(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]
