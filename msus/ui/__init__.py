"""Streamlit pieces of the review app: the browser cine player, its frame route, panels.

``app.py`` wires them; everything here calls into the library and does no image processing.
"""
