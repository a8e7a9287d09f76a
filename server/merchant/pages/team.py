"""The dashboard's Team and Audit pages (owners only): members and their roles, invitations,
sessions, and the log of settings changes.

An ``OwnerOnly`` child of the dashboard door: a marketer's session gets 403 on every route.
An invitation link is shown on the page that made it, never put in the session cookie: there
is no mail server, so the owner sends it.
"""
from __future__ import annotations

from flask import Response, current_app, flash, g, redirect, request, url_for

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import ApiError
from server.merchant import accounts, audit
from server.merchant.doors import OwnerOnly, current_actor, render_page

bp = OwnerOnly("team", __name__)


def _team_page(invited: accounts.NewInvitation | None = None, error: str | None = None,
               form: dict[str, str] | None = None) -> tuple[str, int]:
    now = get_clock().now()
    link = None
    if invited is not None:
        link = current_app.config["PUBLIC_URL"] + url_for("dashboard.accept_invite", token=invited.token)
    page = render_page("admin/team.html", active="team", members=accounts.list_members(get_session(), g.shop.id),
                       invitations=accounts.pending_invitations(get_session(), g.shop.id, now),
                       sessions=accounts.session_counts(get_session(), g.shop.id, now), roles=accounts.ROLE_LABELS,
                       invited=invited, invite_link=link, error=error, form=form or {},
                       invitation_days=accounts.INVITATION_DAYS)
    return page, 200 if error is None else 422


@bp.get("/team")
def team() -> tuple[str, int]:
    """Members with their roles and sessions, pending invitations, the invitation form."""
    return _team_page()


@bp.post("/team/invite")
def invite() -> tuple[str, int]:
    """Invite an e-mail address with a role: the page shows the single-use link to send."""
    email, role = request.form.get("email", "")[:300], request.form.get("role", "")
    now = get_clock().now()
    try:
        invited = accounts.invite(get_session(), g.shop, email, role, current_actor(), now)
    except ApiError as exc:
        get_session().rollback()
        return _team_page(error=exc.message, form={"email": email, "role": role})
    audit.record(get_session(), g.shop.id, current_actor(), now, "team", invited.invitation.email, None,
                 f"invited as {accounts.ROLE_LABELS[role].lower()}")
    return _team_page(invited=invited)


@bp.post("/team/invitations/<int:invitation_id>/revoke")
def revoke_invitation(invitation_id: int) -> Response:
    """Revoke a pending invitation: its link stops working."""
    now = get_clock().now()
    try:
        row = accounts.revoke_invitation(get_session(), g.shop.id, invitation_id, now)
    except ApiError as exc:
        flash(exc.message, "error")
    else:
        audit.record(get_session(), g.shop.id, current_actor(), now, "team", row.email,
                     f"invited as {row.role}", "invitation revoked")
        flash(f"The invitation to {row.email} is revoked.", "ok")
    return redirect(url_for("dashboard.team.team"))


@bp.post("/team/members/<int:user_id>/role")
def change_role(user_id: int) -> Response:
    """Give a member another role (the last owner stays an owner)."""
    try:
        user, before = accounts.change_role(get_session(), g.shop.id, user_id, request.form.get("role", ""))
    except ApiError as exc:
        get_session().rollback()
        flash(exc.message, "error")
        return redirect(url_for("dashboard.team.team"))
    if before != user.role:
        audit.record(get_session(), g.shop.id, current_actor(), get_clock().now(), "team", user.email, before, user.role)
    flash(f"{user.email} is now {accounts.ROLE_LABELS[user.role].lower()}.", "ok")
    if g.user is not None and g.user.id == user.id and user.role != "owner":
        return redirect(url_for("dashboard.pages.overview"))  # the Team page is an owner's no more
    return redirect(url_for("dashboard.team.team"))


@bp.post("/team/members/<int:user_id>/remove")
def remove_member(user_id: int) -> Response:
    """Remove a member: the account and all its sessions go (the last owner stays)."""
    try:
        user = accounts.remove_member(get_session(), g.shop.id, user_id)
    except ApiError as exc:
        get_session().rollback()
        flash(exc.message, "error")
        return redirect(url_for("dashboard.team.team"))
    audit.record(get_session(), g.shop.id, current_actor(), get_clock().now(), "team", user.email, user.role, "removed")
    flash(f"{user.email} is removed from the team and logged out.", "ok")
    if g.user is not None and g.user.id == user_id:
        return redirect(url_for("dashboard.login"))
    return redirect(url_for("dashboard.team.team"))


@bp.post("/team/members/<int:user_id>/sessions/revoke")
def revoke_sessions(user_id: int) -> Response:
    """Sign a member out everywhere: each of their browsers goes to the log-in page next."""
    try:
        user = accounts.member(get_session(), g.shop.id, user_id)
    except ApiError as exc:
        flash(exc.message, "error")
        return redirect(url_for("dashboard.team.team"))
    ended = accounts.end_user_sessions(get_session(), g.shop.id, user.id)
    audit.record(get_session(), g.shop.id, current_actor(), get_clock().now(), "team", user.email,
                 f"{ended} session(s)", "signed out everywhere")
    flash(f"{user.email} is signed out everywhere ({ended} session(s) ended).", "ok")
    return redirect(url_for("dashboard.team.team"))


@bp.get("/audit")
def audit_log() -> str:
    """The audit log: the shop's settings, preset, secret and team changes, newest first."""
    raw = request.args.get("page", "1")
    page = int(raw) if raw.isdigit() and len(raw) < 7 else 1
    return render_page("admin/audit.html", active="audit", log=audit.list_entries(get_session(), g.shop.id, page))

