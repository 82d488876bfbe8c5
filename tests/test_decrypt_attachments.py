"""`intake decrypt` writes a report's attachments next to its JSON, byte for byte as they
were on the device, and says so when one is damaged; `intake purge-uploads`."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from intake import attachments as att
from intake import crypto, receipts, reports, store, uploads
from intake.cli import main
from intake.instance import Created

from support import PASSPHRASE

FILES = (
    crypto.NewAttachment("../../évidence photo.jpg", "image/jpeg", os.urandom(att.CHUNK_SIZE + 9), "photo"),
    crypto.NewAttachment("voice-note.webm", "audio/webm", os.urandom(5000), "voice"),
)


def _upload(instance: Created, files: tuple[crypto.NewAttachment, ...] = FILES, *,
            complete: bool = True) -> str:
    sealed = crypto.seal_report({"schema": 1, "language": "en"}, instance.config.recipients, files)
    token = os.urandom(32)
    declared = tuple(uploads.Declared(aid.hex(), sum(map(len, chunks)), len(chunks))
                     for aid, chunks in zip(sealed.attachment_ids, sealed.chunks, strict=True))
    request = uploads.UploadRequest(
        reports.Submission(sealed.envelope, receipt_code=receipts.new_code(), language="en"),
        token, declared)
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        progress = uploads.start(conn, instance.config, request)
        for aid, chunks in zip(sealed.attachment_ids, sealed.chunks, strict=True):
            for index, chunk in enumerate(chunks if complete else chunks[:1]):
                address = uploads.ChunkAddress(progress.report_id, aid.hex(), index, token)
                uploads.put_chunk(conn, instance.config, address, chunk)
    finally:
        conn.close()
    return progress.report_id


def _decrypt(runner: CliRunner, instance: Created, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    passfile = tmp_path / "pass.txt"
    passfile.write_text(PASSPHRASE, encoding="utf-8")
    return runner.invoke(main, ["--instance", str(instance.config.instance_dir), "decrypt",
                                "--key", str(instance.key_file), "--passphrase-file", str(passfile),
                                *args])


def test_attachments_are_written_next_to_the_json(runner: CliRunner, instance: Created, tmp_path: Path) -> None:
    report_id = _upload(instance)
    _upload(instance, complete=False)  # still uploading: not a report, not decrypted
    out = tmp_path / "out"
    result = _decrypt(runner, instance, tmp_path, "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads((out / f"{report_id}.json").read_text(encoding="utf-8"))
    files = doc["attachment_files"]
    assert [f["file"] for f in files] == [f"{report_id}-1-_.._évidence photo.jpg",
                                          f"{report_id}-2-voice-note.webm"]
    for listed, original in zip(files, FILES, strict=True):
        written = out / listed["file"]
        assert written.read_bytes() == original.data
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert listed["name"] == original.name and listed["size"] == len(original.data)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{report_id}.json", *(f["file"] for f in files)])


def test_without_out_the_json_says_how_to_get_the_files(runner: CliRunner, instance: Created, tmp_path: Path) -> None:
    report_id = _upload(instance)
    result = _decrypt(runner, instance, tmp_path)
    assert result.exit_code == 0
    (doc,) = json.loads(result.stdout)
    assert [f["name"] for f in doc["attachment_files"]] == [f.name for f in FILES]
    assert "file" not in doc["attachment_files"][0]
    assert f"Report {report_id} has attachment 1" in result.stderr and "--out" in result.stderr


def test_a_damaged_attachment_is_named_and_fails_the_command(runner: CliRunner, instance: Created, tmp_path: Path) -> None:
    report_id = _upload(instance)
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        conn.execute("UPDATE attachment_chunks SET data = zeroblob(length(data)) WHERE idx = 1")
    finally:
        conn.close()
    out = tmp_path / "out"
    result = _decrypt(runner, instance, tmp_path, "--out", str(out))
    assert result.exit_code == 1
    assert "Attachment 1 (../../évidence photo.jpg)" in result.stderr and "damaged" in result.stderr
    doc = json.loads((out / f"{report_id}.json").read_text(encoding="utf-8"))
    assert doc["attachment_files"][0]["error"] == "damaged"
    assert (out / doc["attachment_files"][1]["file"]).read_bytes() == FILES[1].data
    assert not any("évidence" in p.name for p in out.iterdir())  # nothing written in part


def test_purge_uploads_command(runner: CliRunner, instance: Created) -> None:
    _upload(instance, complete=False)
    base = ["--instance", str(instance.config.instance_dir), "purge-uploads"]
    assert runner.invoke(main, base).stdout == "0 incomplete upload(s) deleted.\n"
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        old = reports.utcnow() - timedelta(hours=instance.config.limits.upload_expiry_hours + 1)
        conn.execute("UPDATE uploads SET updated_at = ?", (old.isoformat(),))
    finally:
        conn.close()
    assert runner.invoke(main, base).stdout == "1 incomplete upload(s) deleted.\n"
