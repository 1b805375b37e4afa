"""Teaching page: blind-reveal cases from the samples folder."""

from msus.config import load_settings
from msus.ui import optional

optional.call("teaching_page", "render", load_settings().samples_dir)
