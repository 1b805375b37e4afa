"""The DICOMweb archive (PACS): where it is, how to talk to it, its frames, and the outbox.

* :mod:`msus.pacs.config` — :class:`~msus.pacs.config.PacsConfig` from ``MSUS_PACS_*`` or a TOML
  file (never in code).
* :mod:`msus.pacs.query` — what a search asks and answers: UID and date checks, study / series /
  instance records, the STOW-RS result.
* :mod:`msus.pacs.http` — requests / HTTP failures as one-line :mod:`msus.errors` exceptions.
* :mod:`msus.pacs.client` — :class:`~msus.pacs.client.Archive`: QIDO-RS search, WADO-RS
  retrieval and frame-by-frame open, STOW-RS storage (on :mod:`dicomweb_client`).
* :mod:`msus.pacs.frames` — frames of an archived loop: transfer-syntax sniffing, the bounded
  frame cache, the background prefetcher and the :class:`msus.cine.Cine` built on them.
* :mod:`msus.pacs.payload` — DICOM objects as the bytes that are queued and sent.
* :mod:`msus.pacs.outbox` / :mod:`msus.pacs.outbox_items` / :mod:`msus.pacs.lock` — reports
  waiting for the archive: never lost, never sent twice.

The annotated loop as a new series (a Secondary Capture) is built by
:mod:`msus.export.secondary_capture`.  Nothing here logs patient data.
"""
