"""Worklist page: every stored loop, filtered; opening one goes to Review."""

from msus.ui import worklist_page

worklist_page.render()
