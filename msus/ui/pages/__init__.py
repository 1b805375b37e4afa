"""Page scripts of the app's multipage navigation (see :mod:`msus.ui.navigation`)."""
