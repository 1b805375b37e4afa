"""What a batch runs over: the loops of a folder tree, or of a PACS query.

``batch_items(source)`` turns the ``SOURCE`` of ``msus batch`` into :class:`BatchItem` values,
one per loop, in a stable order:

* a folder (or one file): :func:`msus.io.tree.find_loops` — every loop msus opens, a
  single-frame DICOM series folder as one loop;
* ``pacs:`` plus QIDO-RS filters, ``&``-separated ``key=value`` pairs::

      pacs:modality=US&date=20250101-20250131&body_part=THIGH
      pacs:patient_id=P1,P2
      pacs:study_uid=1.2.3.4&limit=50

  keys: ``modality`` (default ``US``; ``any`` for every modality), ``date`` (``YYYYMMDD`` or
  ``FROM-TO``), ``date_from``, ``date_to``, ``body_part`` (BodyPartExamined of the series),
  ``patient_id``, ``study_uid`` (both take comma lists), ``accession`` and ``limit`` (studies).
  Each multi-frame image instance is one loop; a series of single-frame images is one loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from msus.errors import LoadError, PacsError

PACS_PREFIX = "pacs:"
PACS_KEYS = ("modality", "date", "date_from", "date_to", "body_part", "patient_id", "study_uid", "accession", "limit")


@dataclass(frozen=True)
class BatchItem:
    """One loop of a batch (small and picklable: it travels to the workers).

    ``source`` is what the table shows (a path relative to the batch root, or
    ``pacs:<study>/<series>[/<sop>]``); ``path``/``series`` open a local loop,
    ``study_uid``/``series_uid``/``sop_uid`` an archived one (``sop_uid`` None: a series of
    single-frame images).
    """

    source: str
    path: str | None = None
    series: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None

    @property
    def is_pacs(self) -> bool:
        return self.path is None


def batch_items(source: str, archive=None) -> list[BatchItem]:
    """The loops of ``source`` (a folder, a file, or ``pacs:…`` with ``archive`` or the configured one)."""
    text = str(source)
    if text.startswith(PACS_PREFIX):
        query = parse_pacs_query(text)
        if archive is not None:
            return pacs_items(query, archive)
        from msus.pacs.client import Archive

        with Archive() as a:
            return pacs_items(query, a)
    return folder_items(Path(text))


def folder_items(root: Path) -> list[BatchItem]:
    from msus.io.tree import find_loops

    root = Path(root)
    base = root if root.is_dir() else root.parent
    return [BatchItem(source=lp.relative_to(base), path=str(lp.path), series=lp.series) for lp in find_loops(root)]


def parse_pacs_query(text: str) -> dict:
    """``pacs:key=value&…`` → a dict of the filters (values stripped; lists split on commas)."""
    body = text[len(PACS_PREFIX):].lstrip("?")
    out: dict = {}
    for part in filter(None, (p.strip() for p in body.split("&"))):
        key, sep, value = part.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in PACS_KEYS:
            raise PacsError(f"pacs query: expected key=value with a key among {', '.join(PACS_KEYS)}, got {part!r}")
        out[key] = value.strip()
    if "date" in out:
        d_from, _, d_to = out.pop("date").partition("-")
        out.setdefault("date_from", d_from or None)
        out.setdefault("date_to", d_to or d_from or None)
    for key in ("patient_id", "study_uid"):
        if key in out:
            out[key] = [v.strip() for v in out[key].split(",") if v.strip()]
    if "limit" in out:
        try:
            out["limit"] = int(out["limit"])
        except ValueError:
            raise PacsError(f"pacs query: limit must be a whole number, got {out['limit']!r}") from None
    modality = out.get("modality", "US")
    out["modality"] = None if modality.lower() in ("", "any", "*") else modality
    return out


def pacs_items(query: dict, archive) -> list[BatchItem]:
    """The loops an archive holds for a parsed query (QIDO-RS: studies → series → instances)."""
    studies = _studies(query, archive)
    items: list[BatchItem] = []
    for study_uid in studies:
        for series in archive.list_series(study_uid, modality=query.get("modality"), body_part=query.get("body_part")):
            images = [i for i in archive.list_instances(study_uid, series.series_uid) if i.is_image]
            singles = [i for i in images if i.n_frames <= 1]
            for inst in images:
                if inst.n_frames > 1 or len(singles) == 1:
                    items.append(BatchItem(f"pacs:{study_uid}/{series.series_uid}/{inst.sop_uid}", study_uid=study_uid,
                                           series_uid=series.series_uid, sop_uid=inst.sop_uid))
            if len(singles) > 1:
                items.append(BatchItem(f"pacs:{study_uid}/{series.series_uid}", study_uid=study_uid,
                                       series_uid=series.series_uid))
    return items


def _studies(query: dict, archive) -> list[str]:
    """Study UIDs matching the query (each patient ID / study UID is one QIDO-RS search)."""
    common = dict(date_from=query.get("date_from"), date_to=query.get("date_to"),
                  accession_number=query.get("accession"), modality=query.get("modality"))
    if "limit" in query:
        common["limit"] = query["limit"]
    searches = [dict(common, patient_id=p) for p in query.get("patient_id", [])] or [dict(common)]
    wanted = query.get("study_uid")
    seen: dict[str, None] = {}
    for kw in searches:
        if wanted:
            for uid in wanted:
                for s in archive.search_studies(study_uid=uid, **kw):
                    seen.setdefault(s.study_uid)
        else:
            for s in archive.search_studies(**kw):
                seen.setdefault(s.study_uid)
    return list(seen)


def describe(source: str) -> str:
    """What a SOURCE is, for messages (never a patient field)."""
    if str(source).startswith(PACS_PREFIX):
        return "PACS query"
    p = Path(source)
    if not p.exists():
        raise LoadError(f"{p.name or p}: no such file or folder")
    return f"folder {p}" if p.is_dir() else f"file {p.name}"
