"""Administration (accounts, focal points, keys and settings) and the analysts' figures."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, render_template, request
from flask_babel import lazy_gettext as _l

from intake import accounts, audit, crypto, focal, store, triage
from intake.app import get_db
from intake.casework import access, bp, config, small_id
from intake.casework.access import roles


@bp.get("/users")
@roles("admin")
def users() -> str:
    return render_template("console/users.html", users=accounts.all_users(get_db()))


@bp.post("/users")
@roles("admin", fresh=True)
def add_user() -> tuple[str, int] | str:
    try:
        added, code = accounts.add(
            get_db(), config().audit_key, username=request.form.get("username", "")[:64],
            role=request.form.get("role", ""), actor=access.user().id, now=access.now(),
            setup_hours=config().console.setup_hours,
        )
    except accounts.AccountError:
        return render_template(
            "console/users.html", users=accounts.all_users(get_db()),
            username=request.form.get("username", "")[:64],
            error=_l("Choose a new user name of 2 to 32 characters (letters a-z, digits, dots, "
                     "dashes or underscores) and a role."),
        ), 400
    return render_template("console/setup_code.html", added=added, code=code)


def _user_id() -> int:
    user_id = small_id(request.form.get("user", ""))
    if user_id is None:
        abort(400)
    return user_id


@bp.post("/users/reset")
@roles("admin", fresh=True)
def reset_user() -> str:
    user_id = _user_id()
    target = accounts.get(get_db(), user_id)
    if target is None:
        abort(404)
    code = accounts.reset(get_db(), config().audit_key, user_id=user_id,
                          actor=access.user().id, now=access.now(),
                          setup_hours=config().console.setup_hours)
    return render_template("console/setup_code.html", added=target, code=code)


@bp.post("/users/disable")
@roles("admin", fresh=True)
def disable_user() -> Response:
    user_id = _user_id()
    if user_id == access.user().id:
        abort(400)  # an administrator cannot lock themselves out by accident
    try:
        accounts.disable(get_db(), config().audit_key, user_id=user_id,
                         actor=access.user().id, now=access.now())
    except accounts.AccountError:
        abort(404)
    return Response(status=303, headers={"Location": request.path.rsplit("/", 1)[0]})


@bp.get("/focal-points")
@roles("admin")
def focal_points() -> str:
    return render_template("console/focal_points.html", points=focal.all_points(get_db()))


@bp.post("/focal-points")
@roles("admin", fresh=True)
def add_focal_point() -> tuple[str, int] | str:
    conn = get_db()
    try:
        with store.transaction(conn):
            point, code = focal.add(conn, request.form.get("name", "")[:200], now=access.now())
            audit.record(conn, config().audit_key, actor=access.user().id,
                         action="focal_added", now=access.now(), detail={"focal": point.id})
    except ValueError:
        return render_template("console/focal_points.html", points=focal.all_points(conn),
                               error=_l("A focal point's name has 1 to 100 characters.")), 400
    return render_template("console/focal_points.html", points=focal.all_points(conn),
                           added=point, code=code)


@bp.post("/focal-points/revoke")
@roles("admin", fresh=True)
def revoke_focal_point() -> Response:
    conn = get_db()
    focal_id = request.form.get("focal", "")[:16]
    with store.transaction(conn):
        if not focal.revoke(conn, focal_id, now=access.now()):
            abort(404)
        audit.record(conn, config().audit_key, actor=access.user().id, action="focal_revoked",
                     now=access.now(), detail={"focal": focal_id})
    return Response(status=303, headers={"Location": request.path.rsplit("/", 1)[0]})


@bp.get("/settings")
@roles("admin")
def settings() -> str:
    cfg = config()
    keys = [crypto.fingerprint(key.key_id) for key in cfg.recipients]
    retired = [(crypto.fingerprint(old.public_key.key_id), old.accept_until.isoformat(),
                old.accepting(access.now())) for old in cfg.retired_keys]
    try:
        count, head = audit.verify(get_db(), cfg.audit_key)
        broken = None
    except audit.AuditChainBroken as exc:
        count, head, broken = 0, "", str(exc)
    return render_template("console/settings.html", keys=keys, retired=retired,
                           audit_count=count,
                           audit_head=head, audit_broken=broken)


@bp.get("/figures")
@roles("analyst")
def figures() -> str:
    return render_template("console/figures.html", figures=triage.figures(get_db()))


@bp.post("/figures.csv")
@roles("analyst", fresh=True)
def figures_csv() -> Response:
    found = triage.figures(get_db())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["table", "category", "count"])
    for table, rows in found.tables.items():
        for category, shown in rows:
            writer.writerow([table, category, shown])
    with store.transaction(get_db()) as conn:
        audit.record(conn, config().audit_key, actor=access.user().id,
                     action="figures_exported", now=access.now())
    return Response(out.getvalue(), 200, {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="figures.csv"',
    })
