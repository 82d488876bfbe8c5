"""Words the console shows: triage categories, and what its browser code needs."""

from __future__ import annotations

import json

from flask import url_for
from flask_babel import lazy_gettext as _l

from intake import cases
from intake.config import Config
from intake.report.forms import CHOICE_FIELDS, CONSENT_FIELDS, TEXT_FIELDS, ReportForm

FIELD_NAMES = {
    "allegation": _l("Type of allegation"),
    "victim_age": _l("Victim: child or adult"),
    "victim_gender": _l("Victim: gender"),
    "personnel": _l("Category of personnel"),
    "nationalities": _l("Nationality of the alleged perpetrators"),
    "mission": _l("Mission"),
    "place": _l("Place (region or town; no names of people)"),
    "paternity": _l("Paternity claim"),
    "needs": _l("Immediate needs"),
    "risk": _l("Risk level"),
    "assignee": _l("Assigned to"),
    "priority": _l("Priority"),
}

CHOICE_NAMES = {
    "exploitation_transactional": _l("Sexual exploitation: transactional sex"),
    "exploitation_relationship": _l("Sexual exploitation: exploitative relationship"),
    "exploitation_other": _l("Sexual exploitation: other"),
    "abuse_rape": _l("Sexual abuse: rape"),
    "abuse_assault": _l("Sexual abuse: sexual assault"),
    "abuse_other": _l("Sexual abuse: other"),
    "child": _l("Child"),
    "adult": _l("Adult"),
    "unknown": _l("Unknown"),
    "female": _l("Female"),
    "male": _l("Male"),
    "other": _l("Other"),
    "military": _l("Military contingent"),
    "staff_officer": _l("Staff officer or military observer"),
    "police": _l("Police"),
    "civilian": _l("Civilian"),
    "yes": _l("Yes"),
    "no": _l("No"),
    "medical": _l("Medical care"),
    "psychosocial": _l("Psychosocial support"),
    "safety": _l("Safety and protection"),
    "legal": _l("Legal advice"),
    "material": _l("Food, shelter or money"),
    "low": _l("Low"),
    "medium": _l("Medium"),
    "high": _l("High"),
    "immediate": _l("Immediate danger"),
    "urgent": _l("Urgent"),
    "normal": _l("Normal"),
}

STATUS_CHOICES = {
    "received": _l("Received (not yet acknowledged)"),
    "reviewing": _l("Being reviewed"),
    "referred": _l("Referred for support"),
    "investigating": _l("Under investigation"),
    "closed": _l("Closed, with an outcome"),
}

ERRORS = {
    "triage": _l("A triage value was not accepted. Nothing was changed."),
    "status": _l("Choose a status."),
    "outcome": _l("A closed case needs an outcome, and only a closed case has one."),
    "message": _l("A message has 1 to 2,000 characters."),
    "referral": _l("Give the service and the date of the referral (year-month-day)."),
    "consent_refer": _l(
        "Not referred: the complainant did not agree to be referred to a support service, or "
        "their answer has not been read yet. Read the report first."),
    "consent_share": _l(
        "Not shared: the complainant did not agree that their report be given to "
        "investigators, or their answer has not been read yet. Read the report first."),
}

_JS_STRINGS = {
    "unlocking": _l("Unlocking the key on this computer…"),
    "unlocked": _l("Key unlocked on this computer: %(id)s"),
    "locked": _l("No key is unlocked. Choose your key file and type its passphrase."),
    "key_format": _l("This file is not a key file, or it is damaged."),
    "key_passphrase": _l("The passphrase is wrong, or the key file is damaged."),
    "key_mismatch": _l("This key file is damaged: its private key does not match its public key."),
    "key_needed": _l("Choose your key file and type its passphrase first."),
    "decrypting": _l("Opening the report on this computer…"),
    "not_for_key": _l(
        "This report cannot be opened with the key that is unlocked. It was locked to "
        "another key, or it was damaged."),
    "network": _l("The server could not be reached. Nothing was lost; try again."),
    "session_over": _l("Your session has ended. Log in again; the key was forgotten."),
    "sealed_by_server": _l(
        "This report was sent without the browser's encryption and was locked by the server."),
    "note_saving": _l("Locking the note on this computer…"),
    "note_saved": _l("The note was locked and saved."),
    "note_failed": _l("The note could not be saved. It is still in the box; try again."),
    "note_empty": _l("Write a note first."),
    "consent_recorded": _l("The complainant's answers about consent were recorded."),
    "empty": _l("(no answer)"),
    "forgotten": _l("The key was forgotten on this computer."),
}


def case_page_data(case: cases.Case, config: Config) -> str:
    """JSON for the case page's script, in a non-executed <script> data block."""
    from intake.casework.display import consent_text

    form = ReportForm(languages=[], max_text=config.limits.max_text_chars,
                      meta={"csrf": False})
    labels: dict[str, object] = {}
    for name in (*TEXT_FIELDS, *CHOICE_FIELDS, *CONSENT_FIELDS, "help"):
        field = form[name]
        choices = {value: str(label) for value, label, *_ in getattr(field, "choices", []) or []}
        labels[name] = {"label": str(field.label.text), "choices": choices}
    report_id = case.row.report_id
    return json.dumps(
        {
            "reportId": report_id,
            "keys": [key.text for key in config.recipients],
            "labels": labels,
            "order": [*TEXT_FIELDS[:1], *CHOICE_FIELDS, *TEXT_FIELDS[1:], "help",
                      *CONSENT_FIELDS],
            "consentRecorded": case.consent["refer"] is not None,
            "consentTexts": {
                what: {"true": consent_text(what, True), "false": consent_text(what, False)}
                for what in ("refer", "share")
            },
            "envelopeUrl": url_for("casework.envelope", report_id=report_id),
            "consentUrl": url_for("casework.consent", report_id=report_id),
            "notesUrl": url_for("casework.add_note", report_id=report_id),
            "noteUrls": {
                str(nid): url_for("casework.note", report_id=report_id, note_id=nid)
                for nid, _at, _author in case.notes
            },
            "idleMinutes": config.console.idle_minutes,
            "workerUrl": url_for("static", filename="js/keyring.js"),
            "strings": {key: str(value) for key, value in _JS_STRINGS.items()},
        },
        ensure_ascii=True,
    ).replace("</", "<\\/")
