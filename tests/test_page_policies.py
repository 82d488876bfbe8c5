"""The microphone and blob: media are allowed on the pages that need them and nowhere else."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake import security

# Every powerful feature denied (intake/security.py, PERMISSIONS), the microphone but for
# the report form's own origin.
DENY_MIC = security.permissions_policy(None)
SELF_MIC = security.permissions_policy("report.form")
assert "microphone=()" in DENY_MIC and "camera=()" in DENY_MIC
assert DENY_MIC.replace("microphone=()", "microphone=(self)") == SELF_MIC


def _directives(csp: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in csp.split("; ")}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_report_form_may_record_and_play_back_a_voice_note(client: FlaskClient, lang: str) -> None:
    for response in (client.get(f"/{lang}/"), client.get(f"/{lang}/?shell=1"),
                     client.post(f"/{lang}/", data={})):  # the no-JavaScript form, re-rendered
        assert response.headers["Permissions-Policy"] == SELF_MIC
        csp = _directives(response.headers["Content-Security-Policy"])
        assert csp["media-src"] == "blob:" and csp["img-src"] == "'self'"
        assert {k: v for k, v in csp.items() if k != "media-src"} == _directives(security.CSP)


@pytest.mark.parametrize("path", [
    "/en/status", "/en/about", "/en/focal", "/en/offline", "/n", "/en/console/login",
    "/en/console/cases", "/offline.json", "/api/reports", "/api/uploads",
])
def test_every_other_page_keeps_the_microphone_and_blobs_out(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["Permissions-Policy"] == DENY_MIC
    assert response.headers["Content-Security-Policy"] == security.CSP
    assert "blob:" not in security.CSP and "media-src" not in security.CSP


def test_the_case_page_may_show_and_play_decrypted_attachments(app: Flask, client: FlaskClient) -> None:
    # Not logged in, the case page sends the officer to log in; the policy is the page's.
    response = client.get("/en/console/cases/" + "ab" * 16)
    csp = _directives(response.headers["Content-Security-Policy"])
    assert csp["media-src"] == "blob:" and csp["img-src"] == "'self' blob:"
    assert response.headers["Permissions-Policy"] == DENY_MIC
    # Each special page is a real endpoint: a renamed route cannot silently lose its policy.
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(security.PAGE_HEADERS) | set(security.PERMISSION_EXCEPTIONS) <= endpoints


def test_a_posted_file_is_never_spooled_to_disk(app: Flask) -> None:
    big = b"x" * (600 * 1024)  # over Werkzeug's 500 KB spooling threshold
    # As if an administrator had raised the body cap above that threshold.
    app.config.update(MAX_CONTENT_LENGTH=2 << 20, MAX_FORM_MEMORY_SIZE=2 << 20)
    # Encoded by hand: Werkzeug's test client would itself use a temporary file for it.
    body = (b'--b\r\nContent-Disposition: form-data; name="f"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + big + b"\r\n--b--\r\n")
    with app.test_request_context("/en/", method="POST", input_stream=io.BytesIO(body),
                                  content_length=len(body),
                                  content_type="multipart/form-data; boundary=b"):
        from flask import request

        stream = request.files["f"].stream
        assert isinstance(stream, io.BytesIO) and stream.getvalue() == big


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_form_posts_no_attachment_and_says_files_need_javascript(client: FlaskClient, lang: str) -> None:
    import re

    page = client.get(f"/{lang}/").get_data(as_text=True)
    controls = re.findall(r"<input [^>]*type=\"(?:file|radio)\"[^>]*id=\"(?:photo|file)-[^>]*>", page)
    assert len(controls) == 4  # two file pickers, two choices for photos
    for tag in controls:
        assert ('form="attachment-controls"' in tag and 'type="file"' not in tag) or 'name=' not in tag
    assert '<fieldset id="attachments" class="group hidden"' in page
    assert '<form id="attachment-controls" class="hidden" action="#"></form>' in page
    assert 'id="attachments-nojs"' in page and 'enctype' not in page
