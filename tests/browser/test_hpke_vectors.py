"""RFC 9180 Appendix A base-mode vectors against hpke.js, in a real Chromium."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import static_page

pytestmark = pytest.mark.browser

SUPPORTED_KEMS = {0x0010, 0x0012}  # DHKEM(P-256), DHKEM(P-521)
SUPPORTED_AEADS = {0x0001, 0x0002}  # AES-128-GCM, AES-256-GCM


def _vectors_path() -> Path:
    # The vectors are shared by every project in the workspace; read them where they are.
    path = Path(__file__).resolve().parents[3] / "shared/testdata/hpke-rfc9180-base.json"
    if not path.exists() and "INTAKE_SHARED_DIR" in os.environ:
        path = Path(os.environ["INTAKE_SHARED_DIR"]) / "testdata/hpke-rfc9180-base.json"
    return path


def _load() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(_vectors_path().read_text())["vectors"]
    assert all(v["mode"] == 0 for v in vectors)
    return vectors


VECTORS = _load()
SUPPORTED = [v for v in VECTORS if v["kem_id"] in SUPPORTED_KEMS and v["aead_id"] in SUPPORTED_AEADS]
REFUSED = [v for v in VECTORS if v not in SUPPORTED]


def _id(v: dict[str, Any]) -> str:
    return str(v["suite"])


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_page(browser) as page:
        yield page


def test_page_is_under_the_strict_csp(page: Any) -> None:
    # Proves the policy is in force, so every module these tests load runs under it. (Code
    # run through DevTools is exempt from the eval rule, so inline script is the probe.)
    got = page.evaluate("""async () => {
      const violated = [];
      document.addEventListener('securitypolicyviolation', (e) => violated.push(e.violatedDirective));
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.head.appendChild(s);
      let fetched = 'fetched';
      try { await fetch('http://127.0.0.1:9/'); } catch (e) { fetched = e.name; }
      await new Promise((resolve) => setTimeout(resolve, 50));
      const hpke = await import('/static/js/hpke.js');
      return [window.inlineRan === true, fetched, violated.sort(), typeof hpke.suite];
    }""")
    assert got == [False, "TypeError", ["connect-src", "script-src-elem"], "function"]


def test_vector_file_covers_both_sides() -> None:
    # Guards against a vector file that silently lost the suites these tests rely on.
    assert {v["kem_id"] for v in SUPPORTED} == SUPPORTED_KEMS
    assert {v["kdf_id"] for v in SUPPORTED} == {0x0001, 0x0003}
    assert {v["kem_id"] for v in REFUSED} >= {0x0020}
    assert {v["aead_id"] for v in REFUSED} >= {0x0003}


# Runs the whole vector inside the page and hands back hex, so that pytest shows any
# difference field by field. Sequence numbers missing from the vector are filled with our
# own messages, so that both contexts reach 255 and 256 by real use, not by a test hook.
RUN_VECTOR = """async (v) => {
  const h = await import('/static/js/hpke.js');
  const b = await import('/static/js/bytes.js');
  const x = b.fromHex, hex = b.toHex;
  const s = h.suite(v.kem_id, v.kdf_id, v.aead_id);
  const pkRm = x(v.pkRm), info = x(v.info);
  const ekm = {privateKey: await h.importPrivateKey(v.kem_id, x(v.skEm), x(v.pkEm)),
               publicKey: x(v.pkEm)};
  const skR = await h.importPrivateKey(v.kem_id, x(v.skRm), pkRm);
  const e = await s.encap(pkRm, ekm);
  const ks = await s.keySchedule(e.sharedSecret, info);
  const sender = await s.setupBaseS(pkRm, info, ekm);
  const receiver = await s.setupBaseR(x(v.enc), skR, pkRm, info);
  const bySeq = new Map(v.encryptions.map((m) => [Number(m['sequence number']), m]));
  const sealed = {}, opened = {};
  for (let seq = 0; seq <= Math.max(...bySeq.keys()); seq++) {
    const m = bySeq.get(seq);
    const aad = m ? x(m.aad) : b.utf8('filler ' + seq), pt = m ? x(m.pt) : b.utf8('filler');
    const ct = await sender.ctx.seal(aad, pt);
    if (m) {
      sealed[seq] = hex(ct);
      opened[seq] = hex(await receiver.open(aad, x(m.ct)));
    } else {
      await receiver.open(aad, ct);
    }
  }
  return {
    enc: hex(e.enc), setup_enc: hex(sender.enc), shared_secret: hex(e.sharedSecret),
    decap: hex(await s.decap(x(v.enc), skR, pkRm)),
    key_schedule_context: hex(ks.keyScheduleContext), secret: hex(ks.secret),
    key: hex(ks.key), base_nonce: hex(ks.baseNonce), exporter_secret: hex(ks.exporterSecret),
    sealed, opened,
  };
}"""


@pytest.mark.parametrize("vector", SUPPORTED, ids=_id)
def test_known_answers(page: Any, vector: dict[str, Any]) -> None:
    got = page.evaluate(RUN_VECTOR, vector)
    assert got["enc"] == got["setup_enc"] == vector["enc"]
    assert got["shared_secret"] == got["decap"] == vector["shared_secret"]
    for field in ("key_schedule_context", "secret", "key", "base_nonce", "exporter_secret"):
        assert got[field] == vector[field], field
    for m in vector["encryptions"]:
        seq = m["sequence number"]
        assert got["sealed"][seq] == m["ct"], f"seal at sequence number {seq}"
        assert got["opened"][seq] == m["pt"], f"open at sequence number {seq}"


REFUSE = """async ([kem, kdf, aead]) => {
  const h = await import('/static/js/hpke.js');
  const names = [];
  try { h.suite(kem, kdf, aead); names.push('accepted'); } catch (e) { names.push(e.name); }
  try { await h.importPrivateKey(kem, new Uint8Array(32), new Uint8Array(65));
        names.push('accepted'); } catch (e) { names.push(e.name); }
  return names;
}"""


@pytest.mark.parametrize("vector", REFUSED, ids=_id)
def test_unsupported_vector_suites_are_refused(page: Any, vector: dict[str, Any]) -> None:
    names = page.evaluate(REFUSE, [vector["kem_id"], vector["kdf_id"], vector["aead_id"]])
    assert names[0] == "HpkeUnsupported"
    if vector["kem_id"] not in SUPPORTED_KEMS:
        assert names[1] == "HpkeUnsupported"


@pytest.mark.parametrize(
    "ids", [(0x0011, 1, 1), (0x0010, 2, 1), (0x0010, 1, 0xFFFF), (0x0010, 1, 0), ("16", 1, 1)]
)
def test_other_unknown_ids_are_refused(page: Any, ids: tuple[Any, ...]) -> None:
    # P-384, HKDF-SHA384, export-only and reserved ids are not implemented: refused by name.
    assert page.evaluate(REFUSE, list(ids))[0] == "HpkeUnsupported"


FAILURES = """async (v) => {
  const h = await import('/static/js/hpke.js');
  const b = await import('/static/js/bytes.js');
  const x = b.fromHex;
  const s = h.suite(v.kem_id, v.kdf_id, v.aead_id);
  const pkRm = x(v.pkRm), info = x(v.info), m = v.encryptions[0];
  const skR = await h.importPrivateKey(v.kem_id, x(v.skRm), pkRm);
  const name = async (f) => { try { await f(); return 'opened'; } catch (e) { return e.name; } };
  const out = {};
  const ctx = await s.setupBaseR(x(v.enc), skR, pkRm, info);
  const bad = x(m.ct); bad[bad.length - 1] ^= 1;
  out.tampered = await name(() => ctx.open(x(m.aad), bad));
  out.wrongAad = await name(() => ctx.open(b.utf8('other'), x(m.ct)));
  // A failed open must not move the sequence number: the genuine message still opens.
  out.afterFailures = b.toHex(await ctx.open(x(m.aad), x(m.ct)));
  const wrongInfo = await s.setupBaseR(x(v.enc), skR, pkRm, b.utf8('other'));
  out.wrongInfo = await name(() => wrongInfo.open(x(m.aad), x(m.ct)));
  const offCurve = x(v.enc); offCurve[offCurve.length - 1] ^= 1;
  out.offCurve = await name(() => s.setupBaseR(offCurve, skR, pkRm, info));
  const compressed = x(v.enc).slice(0, 1 + (x(v.enc).length - 1) / 2); compressed[0] = 2;
  out.compressed = await name(() => s.setupBaseR(compressed, skR, pkRm, info));
  const one = await s.seal(pkRm, info, x(m.aad), x(m.pt));
  const two = await s.seal(pkRm, info, x(m.aad), x(m.pt));
  out.fresh = b.toHex(one.enc) !== b.toHex(two.enc) && b.toHex(one.ct) !== b.toHex(two.ct);
  out.roundTrip = b.toHex(await s.open(one.enc, skR, pkRm, info, x(m.aad), one.ct));
  out.singleShotWrongInfo = await name(() => s.open(one.enc, skR, pkRm, new Uint8Array(0),
                                                    x(m.aad), one.ct));
  out.mismatchedPair = await name(() => h.importPrivateKey(v.kem_id, x(v.skEm), pkRm));
  return out;
}"""


@pytest.mark.parametrize("vector", SUPPORTED, ids=_id)
def test_failures_are_named_and_harmless(page: Any, vector: dict[str, Any]) -> None:
    got = page.evaluate(FAILURES, vector)
    pt = vector["encryptions"][0]["pt"]
    assert got == {
        "tampered": "HpkeOpenError",
        "wrongAad": "HpkeOpenError",
        "afterFailures": pt,
        "wrongInfo": "HpkeOpenError",
        "offCurve": "HpkeOpenError",
        "compressed": "HpkeOpenError",
        "fresh": True,
        "roundTrip": pt,
        "singleShotWrongInfo": "HpkeOpenError",
        "mismatchedPair": "HpkeInvalidKey",
    }
