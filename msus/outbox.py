"""Kept for the documented ``msus.outbox.send(obj, archive)``; the outbox lives in :mod:`msus.pacs.outbox`."""

from msus.pacs.outbox import send

__all__ = ["send"]
