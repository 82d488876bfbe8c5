"""The words of the report form's attachments section (static/js/media.js, progress.js).

They are fetched by media.js when the person first touches the section, rather than
carried in every page's data: a first visit on 2G must stay within its budget of 10
requests and 40 KB, and most reports have no attachment. The service worker keeps them
for offline use with the pages (report/offline.py).
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_babel import lazy_gettext as _l

from intake.report import bp

_MEDIA_STRINGS = {
    "attach_preparing": _l("Preparing…"),
    "attach_total": _l("Added so far: %(total)s"),
    "attach_remove": _l("Remove"),
    "attach_remove_named": _l("Remove %(name)s"),
    "attach_not_smaller": _l("this photo could not be made smaller, so it is sent as it is"),
    "attach_too_big": _l(
        "Together these are too big to send: %(total)s. The most is %(max)s. Remove "
        "something, or choose the smaller copy for photos."
    ),
    "attach_too_many": _l("You can add at most this many photos, voice notes and files: %(num)d"),
    "attach_type": _l(
        "This kind of file cannot be sent: %(name)s. You can send photos, sound, video, "
        "PDF and text documents."
    ),
    "attach_cannot_seal": _l(
        "This browser cannot lock photos, voice notes or files. Remove them to send your "
        "report, and describe them in writing."
    ),
    "voice_starting": _l("Starting the microphone…"),
    "voice_recording": _l("Recording: %(time)s. Press “Stop recording” when you have finished."),
    "voice_ready": _l("Your voice note is ready (%(size)s). Listen to it before you send."),
    "voice_deleted": _l("The voice note was deleted."),
    "voice_still_recording": _l("Stop the recording before you send your report."),
    "voice_no_microphone": _l(
        "The microphone could not be used. Check that this page may use it, or write instead."
    ),
    "size_kb": _l("%(num)s KB"),
    "size_mb": _l("%(num)s MB"),
    "upload_sent": _l("Sent: %(sent)s of %(total)s."),
    "upload_minutes_left": _l("Minutes left, about: %(num)d"),
    "upload_under_a_minute": _l("Less than a minute left."),
}


@bp.get("/<lang>/media.json")
def media_strings() -> Response:
    return jsonify({key: str(value) for key, value in _MEDIA_STRINGS.items()})
