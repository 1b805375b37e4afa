"""Kept for the documented ``from msus.io.dicomweb import Archive``; the archive code lives in :mod:`msus.pacs`."""

from msus.pacs.client import Archive

__all__ = ["Archive"]
