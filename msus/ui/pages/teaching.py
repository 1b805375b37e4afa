"""Teaching page: blind-reveal cases from the samples folder."""

from msus.config import load_settings
from msus.ui import guard, teaching_page

guard.panel(teaching_page.render, load_settings().samples_dir)
