"""The report form: one definition for the page, the no-JavaScript post and the payload.

Field names are the payload's member names (SECURITY.md, Formats 3). The browser code
reads the same names from the same page, so both paths produce the same payload.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

SHORT = 200  # characters in a one-line answer


def _choices(pairs: list[tuple[str, Any]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


YES_NO_UNSURE = _choices([("yes", _l("Yes")), ("no", _l("No")), ("unsure", _l("I am not sure"))])
CONSENT = _choices([("no", _l("No")), ("yes", _l("Yes"))])


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _real_date(form: Any, field: Any) -> None:
    from datetime import date

    if field.data:
        try:
            date.fromisoformat(field.data)
        except ValueError:
            raise ValidationError(
                _l("Please give the date as year-month-day, for example 2025-03-14.")
            ) from None


class ReportForm(FlaskForm):
    # The server's own id for this form, so a resubmitted form is recognised (not a report
    # field: it is the envelope's report id on the no-JavaScript path).
    report_id = HiddenField(validators=[Optional(), Regexp(r"^[0-9a-f]{32}$")])
    reporter = RadioField(
        _l("Who is telling us?"),
        choices=_choices([
            ("self", _l("It happened to me")),
            ("carer", _l("I am a parent or carer of the person it happened to")),
            ("other", _l("Someone else")),
        ]),
        validators=[Optional()],
    )
    minor = RadioField(
        _l("Is the person it happened to under 18?"), choices=YES_NO_UNSURE,
        validators=[Optional()],
    )
    age_range = SelectField(
        _l("How old are they?"),
        choices=_choices([("", _l("I don't know / I'd rather not say")), ("0-11", "0–11"),
                 ("12-14", "12–14"), ("15-17", "15–17"), ("18-24", "18–24"),
                 ("25-39", "25–39"), ("40-59", "40–59"), ("60+", "60+")]),
        validators=[Optional()],
    )
    what = TextAreaField(
        _l("What happened?"),
        description=_l("Write it in your own words, in any language. Take your time."),
        validators=[DataRequired(message=_l(
            "Please tell us what happened. It is the only question you must answer."
        ))],
    )
    when_date = StringField(_l("On what date?"), validators=[Optional(), _real_date])
    when_period = StringField(
        _l("Or roughly when, if you don't know the date?"),
        description=_l("For example: last rainy season, two months ago."),
        validators=[Optional(), Length(max=SHORT)],
    )
    country = StringField(_l("Country"), validators=[Optional(), Length(max=SHORT)])
    place = StringField(
        _l("Town, village or camp"), validators=[Optional(), Length(max=SHORT)]
    )
    perpetrator = RadioField(
        _l("Who did it?"),
        choices=_choices([
            ("soldier", _l("A soldier")), ("police", _l("A police officer")),
            ("civilian", _l("Someone working for the UN who is not a soldier or police officer")),
            ("unknown", _l("I don't know")),
        ]),
        validators=[Optional()],
    )
    perpetrator_nationality = StringField(
        _l("Their country, if you know it"), validators=[Optional(), Length(max=SHORT)]
    )
    perpetrator_description = TextAreaField(
        _l("What did they look like?"),
        description=_l("Uniform, flag, badge, vehicle number or camp: anything you remember."),
        validators=[Optional(), Length(max=2000)],
    )
    perpetrator_name = StringField(
        _l("Their name, if you know it"), validators=[Optional(), Length(max=SHORT)]
    )
    danger_now = RadioField(
        _l("Is anyone in danger now?"), choices=YES_NO_UNSURE, validators=[Optional()]
    )
    help = CheckboxesField(
        _l("What help would you like?"),
        choices=_choices([
            ("medical", _l("A doctor or nurse")),
            ("counselling", _l("Someone to talk to")),
            ("safety", _l("Help to be safe")),
            ("legal", _l("Advice about my rights")),
            ("material", _l("Food, shelter or money")),
        ]),
        validators=[Optional()],
    )
    consent_contact = RadioField(
        _l("May we contact you?"), choices=CONSENT, default="no", validators=[Optional()]
    )
    contact_how = StringField(
        _l("How can we reach you safely?"),
        description=_l("A phone number, or a person you trust."),
        validators=[Optional(), Length(max=SHORT)],
    )
    contact_when = StringField(
        _l("When is it safe to contact you?"), validators=[Optional(), Length(max=SHORT)]
    )
    consent_refer = RadioField(
        _l("May we tell a support service about you, so that it can help you?"),
        choices=CONSENT, default="no", validators=[Optional()],
    )
    consent_share = RadioField(
        _l("May we give your report to people who investigate?"), choices=CONSENT,
        default="no", validators=[Optional()],
    )
    consent_statistics = RadioField(
        _l("May we count your report in numbers we publish, without your name or details?"),
        choices=CONSENT, default="no", validators=[Optional()],
    )
    preferred_language = SelectField(
        _l("Which language should we use with you?"), validators=[Optional()]
    )

    def __init__(self, *args: Any, languages: list[tuple[str, str]], max_text: int,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preferred_language.choices = _choices([("", "—"), *languages])
        # WTForms' own message would be English in most of our languages.
        self.what.validators = [*self.what.validators, Length(max=max_text, message=_l(
            "This answer is too long: it can have at most %(max)d characters. Please shorten "
            "it, or send the rest in a second report."
        ))]


TEXT_FIELDS = (
    "what", "when_date", "when_period", "country", "place", "perpetrator_nationality",
    "perpetrator_description", "perpetrator_name", "contact_how", "contact_when",
)
CHOICE_FIELDS = ("reporter", "minor", "age_range", "perpetrator", "danger_now",
                 "preferred_language")
CONSENT_FIELDS = ("consent_contact", "consent_refer", "consent_share", "consent_statistics")


def payload_from_form(form: ReportForm, language: str) -> dict[str, object]:
    """The schema-1 payload of a validated form, built as the browser builds it."""
    payload: dict[str, object] = {"schema": 1, "language": language}
    for name in TEXT_FIELDS + CHOICE_FIELDS:
        value = (form[name].data or "").strip()
        if value:
            payload[name] = value
    if form.help.data:
        payload["help"] = list(form.help.data)
    for name in CONSENT_FIELDS:
        payload[name] = form[name].data == "yes"
    return payload
