"""Streamlit pieces for the findings store: reviewer, autosave, study list, finding, agreement.

The app calls, in order, on every rerun::

    from msus.ui import store_panels
    reviewer = store_panels.reviewer_chooser()              # sidebar; OIDC user when logged in
    store_panels.connect(cine, review, reviewer)            # autosave + restore saved calipers
    ...
    store_panels.finding_panel(cine, review, reviewer, analysis_result)   # save / finalize
    store_panels.agreement_panel(cine)                      # several reviewers on this loop
    store_panels.study_list()                               # what has been measured

Autosave: :func:`connect` plugs a :class:`msus.store.autosave.CaliperSync` into the review on
screen (:meth:`msus.ui.review.Review.on_measurement_changed`); every caliper added, moved,
relabelled or deleted is written to the store at once with its row version (optimistic
concurrency), so a second reviewer can never overwrite it.  The rules live in the library
(:mod:`msus.store.autosave`, :meth:`msus.store.Store.save_analysis`, :mod:`msus.record`); this
module calls them and draws.  Session state: :class:`msus.ui.session.AppState` (the reviewer
name, the sign confirmation, the study list's note); widget keys ``msus_reviewer_pick``,
``msus_reviewer_typed``, ``msus_finalize*``, ``msus_amend*``, ``msus_study_*``.
"""

from __future__ import annotations

import logging

import streamlit as st

from msus.errors import MsusError
from msus.ui import clicks
from msus.ui.session import app_state
from msus.ui.store_access import store_or_none, get_store  # noqa: F401  (store_panels.get_store for the pages)
from msus.ui.study_panels import agreement_panel, find_listed_source, study_list  # noqa: F401  (the app's calls)
from msus.ui.text import md

logger = logging.getLogger(__name__)


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
    state = app_state()
    user = logged_in_user()
    if user:
        state.reviewer = user
        box.caption(f"Reviewer: **{md(user)}** (logged in)")
        return user
    store = store_or_none()
    known = store.reviewers() if store is not None else []
    current = state.reviewer
    if not current:  # a reloaded page keeps its reviewer (the name rides in the URL, ?reviewer=...)
        current = state.reviewer = " ".join(str(st.query_params.get("reviewer", "")).split())[:80]
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
            state.reviewer = current = name
    if current and st.query_params.get("reviewer") != current:
        st.query_params["reviewer"] = current
    if not current:
        box.warning("Choose a reviewer name: measurements are saved under it.")
    return current or None


# ---- autosave -----------------------------------------------------------------------------------
def _sync(review):
    """The review's store link (:class:`msus.store.autosave.CaliperSync`), or None."""
    from msus.store.autosave import CaliperSync

    return next((fn for fn in review.listeners if isinstance(fn, CaliperSync)), None)


def connect(cine, review, reviewer: str | None) -> None:
    """Link the loop on screen to the store: autosave from now on, restore saved calipers.

    The first time a loop is opened in a session with a reviewer chosen, that reviewer's saved
    calipers come back into the review (after a crash or on another day).
    """
    from msus.store.autosave import CaliperSync, lock_reason, saved_marks

    review.record_provider = _current_finding
    store = store_or_none()
    if store is None or not reviewer:
        review.locked = None
        return
    try:
        ref = store.register_loop(cine)
        finding = store.latest_finding(ref)
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    review.locked = lock_reason(finding, reviewer)
    sync = _sync(review)
    if sync is not None and sync.reviewer == reviewer:
        _report(review, sync.save_missing(review.measurements))  # safety net: anything shown is saved
        return
    if sync is not None:  # another reviewer now: their link goes
        review.remove_listener(sync)
    sync = CaliperSync(store, ref.key, reviewer)
    try:
        restored = sync.restore(review.measurements)
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    if restored:
        review.measurements.extend(restored)
        review.messages.append(("success", f"restored {len(restored)} saved caliper(s) of {reviewer}"))
    _report(review, sync.save_missing(review.measurements))  # calipers made before the reviewer was chosen
    review.on_measurement_changed(sync)
    try:
        finding = store.latest_finding(ref)  # the calipers just saved may have changed its values
    except MsusError:
        finding = None
    for which, i in saved_marks(review.measurements if restored else (), finding, review.n_frames).items():
        if getattr(review, f"{which}_frame") is None:
            review.mark(which, i)
    if review.frame_index == 0 and review.command is None:  # open where the saved work is, not on frame 1
        shown = [m.frame_index for m in restored] or [f for f in (review.rest_frame,) if f is not None]
        if shown:
            review.seek(shown[0])


def _report(review, errors: list[str]) -> None:
    review.messages.extend(("error", e) for e in errors)


def _current_finding(review) -> dict | None:
    """Record provider for :meth:`msus.ui.review.Review.record`: the loop's finding, fresh from the store."""
    sync = _sync(review)
    if sync is None:
        return None
    f = sync.store.latest_finding(sync.loop_key)
    return None if f is None else f.to_dict()


def save_status(review) -> str:
    """One line for the UI: how many calipers of this loop are saved."""
    sync = _sync(review)
    if sync is None:
        return "not saved (choose a reviewer)"
    return f"{sync.saved_count(review.measurements)} of {len(review.measurements)} calipers saved"


# ---- finding ------------------------------------------------------------------------------------
def finding_panel(cine, review=None, reviewer: str | None = None, analysis_result=None) -> None:
    """The loop's finding: its values (:mod:`msus.record`), status and signer, second reads;
    "Mark final" (with a confirmation) and "Amend" (a new version with a reason).

    An ``analysis_result`` (from :func:`msus.analysis.analyze`) is saved as a draft automatic
    finding the first time it is shown (:func:`save_analysis`).
    """
    store = store_or_none()
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
    from msus.record import headline, second_reads_line, sources_line, status_text
    from msus.store import finding_origin

    icon = "🔒" if f.signed else "✎"
    st.markdown(plain(f"{icon} {f.classification.replace('_', ' ')} — {status_text(f.to_dict())}, "
                      f"{finding_origin(f.kind, f.extra)}, "
                      f"by {f.reviewer} (updated {f.updated_at[:16].replace('T', ' ')} UTC)"))
    line = headline(f.to_dict())
    if line:
        st.markdown(plain(line))
    said = sources_line(f.to_dict())
    if said:
        st.caption(plain(said))
    for r in f.reasons:
        st.markdown("- " + plain(r))
    second = second_reads_line(ms, f.reviewer)
    if second:
        st.caption("Second reads (for agreement, not in the finding): " + md(second))


def plain(text: str) -> str:
    """``text`` for st.markdown shown as typed: :func:`msus.ui.text.md` (one escaping for the app)."""
    return md(text)


def _sign_step(store, f, reviewer) -> None:
    """Mark final → a confirmation naming the signer and the values → signed."""
    from msus.record import headline

    state = app_state()
    if clicks.button("Mark final", key="msus_finalize", scope=f.id, disabled=not reviewer,
                     help="Sign the finding: it and its calipers are then locked (change them by an amendment)."):
        with clicks.handled("msus_finalize", f.id):
            state.confirm_final = f.id
    if state.confirm_final != f.id or not reviewer:
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
            state.confirm_final = None
            st.rerun()
    if c[1].button("Cancel", key="msus_finalize_cancel"):
        state.confirm_final = None
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
    """Save an analysis result as a draft automatic finding, once per distinct result
    (:meth:`msus.store.Store.save_analysis` holds the rules: same result once, a signed finding stands).

    Called by :func:`finding_panel` (so there is no save button to forget).  Returns True when a
    new finding was written.
    """
    from msus.store.findings import analysis_digest

    if analysis_result is None or not reviewer:
        return False
    store = store_or_none()
    if store is None:
        return False
    digest = analysis_digest(_finding_dict(analysis_result))
    done = app_state().saved_analyses  # offered to the store in this session already: no query per rerun
    if digest in done:
        return False
    try:
        saved = store.save_analysis(store.register_loop(cine), analysis_result, reviewer=reviewer)
    except MsusError as e:
        st.error(f"Saving the finding failed: {md(e)}")
        return False
    done.add(digest)
    return saved is not None


def _finding_dict(result) -> dict:
    """The store's finding fields from an analysis result (:func:`msus.store.analysis_finding`)."""
    from msus.store import analysis_finding

    return analysis_finding(result)

