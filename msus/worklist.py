"""The worklist: which stored loops a reviewer sees, and their times in the reader's time zone.

Plain functions over :class:`msus.store.values.StudyListRow` (no Streamlit): the Worklist page
offers the choices and shows the result.

>>> rows = store.study_list()
>>> todo = filter_rows(rows, WorklistFilter(statuses=("draft",), reviewers=("Ana Sono",)))
>>> local_time(todo[0].last_change_at, "Europe/Berlin")
'2026-12-02 18:05'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NO_FLAG = "no flag"
STATUSES = ("new", "measured", "draft", "final")


@dataclass(frozen=True)
class WorklistFilter:
    """What to keep; an empty tuple / None keeps everything.

    ``flags`` are classifications with spaces (``"suspected full thickness"``) or :data:`NO_FLAG`;
    ``since``/``until`` are inclusive calendar days of the last change, in ``tz``.
    """

    flags: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    tz: str | None = None


def flag_of(row) -> str:
    """The row's flag as shown: its classification with spaces, or :data:`NO_FLAG`."""
    return (row.classification or "").replace("_", " ") or NO_FLAG


def zone(tz: str | None):
    """``ZoneInfo(tz)``; UTC when ``tz`` is empty or unknown."""
    if tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.utc


def parse_utc(iso: str | None) -> datetime | None:
    """An ISO-8601 store time (UTC) as an aware datetime; None when empty or unreadable."""
    if not iso:
        return None
    try:
        t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def local_time(iso: str | None, tz: str | None) -> str:
    """'YYYY-MM-DD HH:MM' of a store time in the time zone ``tz`` ("" when there is none)."""
    t = parse_utc(iso)
    return "" if t is None else t.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")


def zone_name(tz: str | None) -> str:
    """The name to show beside the times ('UTC' when ``tz`` is empty or unknown)."""
    z = zone(tz)
    return "UTC" if z is timezone.utc else str(tz)


def filter_rows(rows, f: WorklistFilter) -> list:
    """The rows ``f`` keeps, in their order."""
    z = zone(f.tz)
    out = []
    for r in rows:
        if f.flags and flag_of(r) not in f.flags:
            continue
        if f.statuses and r.status not in f.statuses:
            continue
        if f.reviewers and not set(r.reviewers) & set(f.reviewers):
            continue
        if f.since or f.until:
            t = parse_utc(r.last_change_at)
            day = None if t is None else t.astimezone(z).date()
            if day is None or (f.since and day < f.since) or (f.until and day > f.until):
                continue
        out.append(r)
    return out
