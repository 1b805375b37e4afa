"""Streamlit pieces for the findings store: reviewer, autosave, study list, finding, agreement.

The app calls, in order, on every rerun::

    from msus.ui import store_panels
    reviewer = store_panels.reviewer_chooser()              # sidebar; OIDC user when logged in
    store_panels.connect(cine, review, reviewer)            # autosave + restore saved calipers
    ...
    store_panels.finding_panel(cine, review, reviewer, analysis_result)   # save / finalize
    store_panels.agreement_panel(cine)                      # several reviewers on this loop
    store_panels.study_list()                               # what has been measured

Autosave: :func:`connect` registers one listener on :mod:`msus.ui.review`; every caliper added,
moved, relabelled or deleted is written to the store at once with its row version (optimistic
concurrency), so a second reviewer can never overwrite it.  Session-state keys:

``msus_reviewer``        the reviewer name chosen in this browser session
``msus_store_links``     review loop key → (store loop key, {measurement id: version})
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from msus.errors import MsusError, StoreError
from msus.ui import clicks
from msus.ui.text import md

logger = logging.getLogger(__name__)

_KEY_REVIEWER = "msus_reviewer"
_KEY_LINKS = "msus_store_links"


@st.cache_resource(show_spinner=False)
def _open(url: str):
    from msus.store import open_store

    return open_store(url)


def get_store():
    """The process-wide store (``MSUS_DATABASE_URL`` or the SQLite file in ``MSUS_DATA_DIR``).

    One store per resolved URL, kept for the life of the server (``st.cache_resource``).
    """
    from msus.store import resolve_url

    return _open(resolve_url())


def _store_or_none():
    try:
        return get_store()
    except MsusError as e:
        st.sidebar.error(f"Findings store unavailable: {md(e)}")
        return None


# ---- reviewer -------------------------------------------------------------------------------------
def logged_in_user() -> str | None:
    """The OIDC user's name or e-mail when Streamlit's login is configured and used."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(user.get("name") or user.get("email") or "").strip() or None
    except Exception:
        logger.debug("logged_in_user: no login configured", exc_info=True)
        return None
    return None


def reviewer_chooser(container=None) -> str | None:
    """Sidebar control for the reviewer's name; returns it (None until chosen)."""
    box = container or st.sidebar
    user = logged_in_user()
    if user:
        st.session_state[_KEY_REVIEWER] = user
        box.caption(f"Reviewer: **{md(user)}** (logged in)")
        return user
    store = _store_or_none()
    known = store.reviewers() if store is not None else []
    current = st.session_state.get(_KEY_REVIEWER, "")
    if not current:  # a reloaded page keeps its reviewer (the name rides in the URL, ?reviewer=...)
        current = " ".join(str(st.query_params.get("reviewer", "")).split())[:80]
        if current:
            st.session_state[_KEY_REVIEWER] = current
    typed_now = " ".join(str(st.session_state.get("msus_reviewer_typed") or "").split())
    pick_now = st.session_state.get("msus_reviewer_pick")
    shown = typed_now or (pick_now if pick_now not in (None, "—") else "") or current  # this run's name
    with box.expander(f"Reviewer: {md(shown)}" if shown else "Reviewer", expanded=not current):
        choice = st.selectbox("Known reviewers", ["—"] + known, index=(known.index(current) + 1) if current in known else 0,
                              key="msus_reviewer_pick")
        typed = st.text_input("…or your name", value="" if current in known else current, key="msus_reviewer_typed",
                              help="Every caliper and finding you make is saved under this name.")
        name = " ".join((typed or (choice if choice != "—" else "")).split())
        if name and name != current:
            st.session_state[_KEY_REVIEWER] = name
            current = name
    if current and st.query_params.get("reviewer") != current:
        st.query_params["reviewer"] = current
    if not current:
        box.warning("Choose a reviewer name: measurements are saved under it.")
    return current or None


# ---- autosave -----------------------------------------------------------------------------------
def _links() -> dict:
    return st.session_state.setdefault(_KEY_LINKS, {})


def _on_change(action, m, review) -> None:
    """Listener: write one caliper change to the store (raises StoreError on conflict)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx() is None:  # plain Python (tests, CLI): no session to save for
        return
    link = _links().get(review.loop_key)
    if link is None:
        return
    store = get_store()
    reviewer = st.session_state.get(_KEY_REVIEWER)
    if not reviewer:
        raise StoreError("not saved: choose a reviewer name first")
    loop_key, versions = link[0], link[1]
    if action == "added":
        saved = store.add_measurement(loop_key, m, reviewer=reviewer)
        versions[m.id] = saved.version
    elif action == "deleted":
        if m.id in versions:
            store.delete_measurement(m.id, expected_version=versions.pop(m.id), reviewer=reviewer)
    elif m.id in versions:
        saved = store.update_measurement(m, expected_version=versions[m.id], reviewer=reviewer)
        versions[m.id] = saved.version
    else:  # made before a reviewer was chosen: save it now
        saved = store.add_measurement(loop_key, m, reviewer=reviewer)
        versions[m.id] = saved.version


def connect(cine, review, reviewer: str | None) -> None:
    """Link the loop on screen to the store: autosave from now on, restore saved calipers.

    The first time a loop is opened in a session with a reviewer chosen, that reviewer's saved
    calipers come back into the review (after a crash or on another day).
    """
    from msus.ui import review as review_mod

    review_mod.on_measurement_changed(_on_change)
    review_mod.set_record_provider(_current_finding)
    store = _store_or_none()
    if store is None or not reviewer:
        review.locked = None
        return
    _update_lock(store, cine, review, reviewer)
    links = _links()
    link = links.get(review.loop_key)
    if link is not None and link[2] == reviewer:
        _save_missing(store, link[0], link[1], review, reviewer)  # safety net: anything shown is saved
        return
    try:
        ref = store.register_loop(cine)
        saved = store.measurements(ref, reviewer=reviewer)
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    versions = {s.id: s.version for s in saved}
    have = {m.id for m in review.measurements}
    restored = [s.measurement for s in saved if s.id not in have]
    if restored:
        review.measurements.extend(restored)
        review.messages.append(("success", f"restored {len(restored)} saved caliper(s) of {reviewer}"))
        _marks_from_labels(review)
    _save_missing(store, ref.key, versions, review, reviewer)  # calipers made before the reviewer was chosen
    links[review.loop_key] = (ref.key, versions, reviewer)
    _marks_from_finding(store, ref, review)
    if review.frame_index == 0 and review.command is None:  # open where the saved work is, not on frame 1
        shown = [m.frame_index for m in restored] or [f for f in (review.rest_frame,) if f is not None]
        if shown:
            review.seek(shown[0])


def _update_lock(store, cine, review, reviewer: str) -> None:
    """Lock the review while the loop's finding is signed and this reviewer's calipers make it."""
    try:
        f = store.latest_finding(store.register_loop(cine))
    except MsusError:
        return
    if f is not None and f.signed and f.reviewer == reviewer:
        review.locked = (f"your calipers make the {f.status} finding signed by {f.signed_by or 'a reviewer'}; "
                         "amend the finding to change them")
    else:
        review.locked = None


def _current_finding(review) -> dict | None:
    """Record provider for :meth:`msus.ui.review.Review.record`: the loop's finding, fresh from the store."""
    link = _links().get(review.loop_key)
    if link is None:
        return None
    f = get_store().latest_finding(link[0])
    return None if f is None else f.to_dict()


def _marks_from_labels(review) -> None:
    """Unmarked rest/contraction frames come back from the restored calipers' labels (latest)."""
    from msus.measure import LABEL_CONTRACTION, LABEL_REST

    for label, which in ((LABEL_REST, "rest"), (LABEL_CONTRACTION, "contraction")):
        if getattr(review, f"{which}_frame") is None:
            frames = [m.frame_index for m in review.measurements if m.role == label]
            if frames:
                review.mark(which, frames[-1])


def _marks_from_finding(store, ref, review) -> None:
    """Unmarked rest/contraction frames come from the loop's saved finding (a second reader sees
    the pair the first one chose)."""
    if review.rest_frame is not None and review.contraction_frame is not None:
        return
    try:
        f = store.latest_finding(ref)
    except MsusError:
        return
    for which in ("rest", "contraction"):
        i = getattr(f, f"{which}_frame", None) if f is not None else None
        if getattr(review, f"{which}_frame") is None and i is not None and 0 <= i < review.n_frames:
            review.mark(which, i)


def _save_missing(store, loop_key: str, versions: dict, review, reviewer: str) -> None:
    for m in review.measurements:
        if m.id not in versions and (not m.reviewer or m.reviewer == reviewer):
            try:
                versions[m.id] = store.add_measurement(loop_key, m, reviewer=reviewer).version
            except MsusError as e:
                review.messages.append(("error", f"saving the measurement failed: {e}"))


def save_status(review) -> str:
    """One line for the UI: how many calipers of this loop are saved."""
    link = _links().get(review.loop_key)
    if link is None:
        return "not saved (choose a reviewer)"
    n = sum(1 for m in review.measurements if m.id in link[1])
    return f"{n} of {len(review.measurements)} calipers saved"


# ---- finding ------------------------------------------------------------------------------------
def finding_panel(cine, review=None, reviewer: str | None = None, analysis_result=None) -> None:
    """The loop's finding: its values (:mod:`msus.record`), status and signer, second reads;
    "Mark final" (with a confirmation) and "Amend" (a new version with a reason).

    An ``analysis_result`` (from :func:`msus.analysis.analyze`) is saved as a draft automatic
    finding the first time it is shown (:func:`save_analysis`).
    """
    store = _store_or_none()
    if store is None:
        return
    st.markdown("##### Finding")
    save_analysis(cine, reviewer, analysis_result)
    try:
        ref = store.register_loop(cine)
        f = store.latest_finding(ref)
        ms = store.measurements(ref) if f is not None else []
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    if f is None:
        st.caption("No finding saved for this loop yet.")
        return
    _finding_summary(f, ms)
    if f.signed:
        _amend_step(store, f, reviewer)
    else:
        _sign_step(store, f, reviewer)


def _finding_summary(f, ms) -> None:
    from msus.record import finding_values, headline, length_text, status_text
    from msus.store import finding_origin

    icon = "🔒" if f.signed else "✎"
    st.markdown(plain(f"{icon} {f.classification.replace('_', ' ')} — {status_text(f.to_dict())}, "
                      f"{finding_origin(f.kind, f.extra)}, "
                      f"by {f.reviewer} (updated {f.updated_at[:16].replace('T', ' ')} UTC)"))
    line = headline(f.to_dict())
    if line:
        st.markdown(plain(line))
    src = f.extra.get("sources") or {}
    said = [f"{role}: " + (f"caliper of {v.get('reviewer') or f.reviewer} ({v.get('kind')})" if v.get("source") == "caliper"
                           else "automatic analysis") for role, v in src.items()]
    if said:
        st.caption(plain("From " + " · ".join(said)))
    for r in f.reasons:
        st.markdown("- " + plain(r))
    second = [m for m in finding_values(ms, reader=f.reviewer).second_reads if m.role != "other"]
    if second:
        st.caption("Second reads (for agreement, not in the finding): " + md("; ".join(
            f"{m.reviewer}: {m.role} {length_text(m.length_mm, m.length_px)} (frame {m.frame_index + 1})" for m in second)))


def plain(text: str) -> str:
    """``text`` for st.markdown shown as typed: :func:`msus.ui.text.md` (one escaping for the app)."""
    return md(text)


def _sign_step(store, f, reviewer) -> None:
    """Mark final → a confirmation naming the signer and the values → signed."""
    from msus.record import headline

    key = "msus_confirm_final"
    if clicks.button("Mark final", key="msus_finalize", scope=f.id, disabled=not reviewer,
                     help="Sign the finding: it and its calipers are then locked (change them by an amendment)."):
        with clicks.handled("msus_finalize", f.id):
            st.session_state[key] = f.id
    if st.session_state.get(key) != f.id or not reviewer:
        return
    box = st.container(border=True)
    box.warning(f"Sign this finding as {md(reviewer)}, now? It says: {md(headline(f.to_dict()) or f.classification)}. "
                "Once signed, the finding and its calipers are locked; a change needs an amendment with a reason.")
    c = box.columns(2)
    if clicks.button("Sign as final", key="msus_finalize_confirm", scope=f.id, container=c[0], type="primary"):
        done = False
        with clicks.handled("msus_finalize_confirm", f.id):
            try:
                store.finalize_finding(f.id, expected_version=f.version, reviewer=reviewer)
                done = True
            except MsusError as e:
                box.error(md(e))
        if done:
            st.session_state.pop(key, None)
            st.rerun()
    if c[1].button("Cancel", key="msus_finalize_cancel"):
        st.session_state.pop(key, None)
        st.rerun()


def _amend_step(store, f, reviewer) -> None:
    """A signed finding changes only by an amendment: a reason, then a new draft version."""
    with st.expander("Amend this finding"):
        st.caption("An amendment is a new version of the finding, linked to this one in the audit log; the calipers "
                   "open again until it is signed.")
        reason = st.text_input("Reason for the amendment", key=f"msus_amend_reason_{f.id}",
                               placeholder="e.g. contraction caliper moved to the last intact fibre")
        if clicks.button("Amend", key="msus_amend", scope=f.id, disabled=not reviewer):
            done = False
            with clicks.handled("msus_amend", f.id):
                try:
                    store.amend_finding(f.id, reason=reason, expected_version=f.version, reviewer=reviewer)
                    done = True
                except MsusError as e:
                    st.error(str(e))
            if done:
                st.rerun()


def save_analysis(cine, reviewer: str | None, analysis_result) -> bool:
    """Save an analysis result as a draft automatic finding, once per distinct result.

    Called by :func:`finding_panel` (so there is no save button to forget).  Returns True when a
    new finding was written.
    """
    import hashlib
    import json

    if analysis_result is None or not reviewer:
        return False
    store = _store_or_none()
    if store is None:
        return False
    d = _finding_dict(analysis_result)
    if not d.get("classification"):
        return False
    digest = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
    done: set = st.session_state.setdefault("msus_saved_analyses", set())
    if digest in done:
        return False
    try:
        ref = store.register_loop(cine)
        latest = store.latest_finding(ref)
        if latest is not None and latest.extra.get("analysis_digest") == digest:
            done.add(digest)
            return False
        if latest is not None and (latest.signed or latest.supersedes):
            done.add(digest)  # a signed finding or an open amendment stands; a new analysis does not replace it
            return False
        d["analysis_digest"] = digest
        store.save_finding(ref, d, reviewer=reviewer, kind="automatic")
    except MsusError as e:
        st.error(f"Saving the finding failed: {md(e)}")
        return False
    done.add(digest)
    return True


def _finding_dict(result) -> dict:
    """The store's finding fields from an analysis result (:func:`msus.store.analysis_finding`)."""
    from msus.store import analysis_finding

    return analysis_finding(result)


# ---- agreement and study list -------------------------------------------------------------------------
def agreement_panel(cine) -> None:
    """Bland–Altman plot and table for the reviewers who measured this loop."""
    from msus.agreement import rater_agreement

    store = _store_or_none()
    if store is None:
        return
    try:
        ref = store.register_loop(cine)
        ms = store.measurements(ref)
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    ag = rater_agreement(ms)
    st.markdown("##### Rater agreement")
    if len(ag.raters) < 2 or not ag.items:
        st.caption("Agreement appears when two or more reviewers have measured the same labelled gaps on this loop.")
        return
    def mm(v) -> str:  # lengths as the app shows them: 2 decimals, "—" where undefined
        return "—" if v is None else f"{v:.2f}"

    # st.dataframe shows cells as plain text (no Markdown), so names go in as they are
    st.dataframe([{"item": r.pop("item"), **{k: mm(v) for k, v in r.items()}} for r in ag.table()],
                 hide_index=True, width="stretch")
    rows = [
        {"pair": f"{b.rater_b} − {b.rater_a}", "n": b.n, "bias (mm)": mm(b.bias_mm),
         "LoA low (mm)": mm(b.loa_low_mm), "LoA high (mm)": mm(b.loa_high_mm)}
        for b in ag.bland_altman
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    icc = "—" if ag.icc_2_1 is None else f"{ag.icc_2_1:.3f}"
    st.caption(f"ICC(2,1), absolute agreement: {icc} over {ag.n_complete_items} item(s) measured by everyone.")
    for n in ag.notes:
        st.caption(md(n))
    pts = [{"mean (mm)": d.mean_mm, "difference (mm)": d.difference_mm, "pair": f"{d.rater_b} − {d.rater_a}",
            "item": d.item} for d in ag.differences]
    try:
        import altair as alt
        import pandas as pd

        df = pd.DataFrame(pts)
        pad = alt.Scale(zero=False, nice=True, padding=24)  # a single point sits inside the plot, not on its edge
        chart = alt.Chart(df).mark_circle(size=70).encode(
            x=alt.X("mean (mm):Q", scale=pad), y=alt.Y("difference (mm):Q", scale=pad), color="pair:N",
            tooltip=["item", "pair", "mean (mm)", "difference (mm)"]
        )
        lines = []
        for b in ag.bland_altman:
            for v, dash in ((b.bias_mm, []), (b.loa_low_mm, [4, 4]), (b.loa_high_mm, [4, 4])):
                if v is not None:
                    lines.append({"y": v, "pair": f"{b.rater_b} − {b.rater_a}", "dash": "bias" if not dash else "LoA"})
        if lines:
            rules = alt.Chart(pd.DataFrame(lines)).mark_rule(strokeDash=[4, 4]).encode(y="y:Q", color="pair:N")
            chart = chart + rules
        st.altair_chart(chart.properties(height=260, title="Bland–Altman: difference vs mean"), width="stretch")
    except ImportError:
        st.scatter_chart(pts, x="mean (mm)", y="difference (mm)")


def study_list(container=None, settings=None, rows=None, tz: str | None = None) -> None:
    """Table of every loop in the store: measurements, reviewers, finding status, last change.

    With ``settings`` (:class:`msus.config.Settings`), an "Open" action opens a listed loop whose
    file is found by name in the samples or the data folder (the sidebar switches to it, and the
    Worklist page goes to Review); otherwise it says in one line where the loop could not be found.
    ``rows`` (default: the whole store) are the rows to show, e.g. the worklist's filtered ones;
    times are shown in the time zone ``tz`` (the browser's; UTC when None).
    """
    from msus.worklist import local_time, zone_name

    box = container or st
    store = _store_or_none()
    if store is None:
        return
    if rows is None:
        try:
            rows = store.study_list()
        except MsusError as e:
            box.error(f"Findings store: {md(e)}")
            return
    if not rows:
        box.caption("Nothing measured yet." if tz is None else "No loop matches these filters.")
        return
    names = [r.source_name or r.loop_key[:20] for r in rows]
    box.dataframe(
        [
            {
                "loop": name,
                "frames": r.n_frames,
                "calipers": r.n_measurements,
                "status": r.status + (f" (signed by {r.signed_by})" if r.signed_by else ""),
                "flag": (r.classification or "").replace("_", " "),
                "Δgap (mm)": None if r.retraction_mm is None else round(r.retraction_mm, 2),
                "finding": r.origin,
                "reviewers": ", ".join(r.reviewers),
                f"last change ({zone_name(tz)})": local_time(r.last_change_at, tz),
            }
            for r, name in zip(rows, names)
        ],
        hide_index=True,
        width="stretch",
    )
    if settings is None:
        return
    c1, c2 = box.columns([4, 1], vertical_alignment="bottom")
    k = c1.selectbox("Loop", list(range(len(rows))), format_func=lambda i: f"{i + 1}. {names[i]}",
                     key="msus_study_pick")
    # the click is handled in its callback, before the page script: a player rerun cannot lose it
    c2.button("Open in Review", key="msus_study_open", on_click=_open_listed, args=(rows[k].source_name, settings),
              help="Open this loop (found by its file name in the samples or the data folder)")
    note = st.session_state.pop("msus_study_note", None)
    if note:
        box.info(md(note))


def find_listed_source(source_name: str, settings) -> tuple[str, str] | None:
    """Where a study-list loop's file is: ("Sample", path under the samples folder) or
    ("Server path", path under the data folder), matched by file name; None if in neither.

    A name that is itself a relative path (``sub/loop.dcm``) is matched exactly first.
    """
    from msus.ui import sources

    name = (source_name or "").strip()
    if not name or name.startswith("<"):
        return None
    for kind, folder in (("Sample", settings.samples_dir), ("Server path", settings.loops_dir)):
        folder = Path(folder)
        loops = sources.list_loops(folder)
        rels = [str(p.relative_to(folder)) for p in loops]
        if name in rels:
            return kind, name
        base = Path(name).name
        for rel, p in zip(rels, loops):
            if p.name == base:
                return kind, rel
    return None


def _open_listed(source_name: str, settings) -> None:
    """Button callback: point the sidebar's open widgets at the listed loop (opened this run)."""
    found = find_listed_source(source_name, settings)
    if found is None:
        shown = source_name or "this loop"
        st.session_state["msus_study_note"] = (
            f"{shown} is not in the samples or the data folder; open it from the sidebar (upload or PACS).")
        return
    kind, rel = found
    st.session_state["msus_goto_review"] = True  # the Worklist page switches to Review
    st.session_state["msus_open_kind"] = kind
    if kind == "Sample":
        st.session_state["msus_sample"] = rel
    else:
        st.session_state["msus_path_pick"] = rel
