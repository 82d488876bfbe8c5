// The report form: seal on this device, send, show the receipt code.
// Without WebCrypto (or without modules at all) this file does nothing and the form posts
// to the server, which seals it there (SECURITY.md, flag 0x01).

import { seal } from './envelope.js';
import { newCode, format } from './receipt.js';
import { fromBase64url, toBase64url } from './bytes.js';
import { pageData, t, say } from './page.js';

var form = document.getElementById('report-form');
var canSeal = window.isSecureContext && window.crypto && crypto.subtle && window.fetch;

// The last sealed report, kept in memory only, so that pressing Send again after a lost
// answer resends the same envelope: the server then recognises it instead of filing it twice.
var pending = null;
var busy = false;

export function payloadFromForm(formElement, fields, language) {
  var data = new FormData(formElement);
  var payload = { schema: 1, language: language };
  fields.text.concat(fields.choice).forEach(function (name) {
    var value = (data.get(name) || '').trim();
    if (value) payload[name] = value;
  });
  var help = data.getAll('help');
  if (help.length) payload.help = help;
  fields.consent.forEach(function (name) {
    payload[name] = data.get(name) === 'yes';
  });
  return payload;
}

function showReceipt(code) {
  // Nothing of the report stays in the page: the fields are emptied, the sealed copy is
  // dropped, and no history entry or storage was ever written.
  form.reset();
  pending = null;
  document.getElementById('report').classList.add('hidden');
  var done = document.getElementById('done');
  document.getElementById('receipt-code').textContent = format(code);
  done.classList.remove('hidden');
  done.focus();
  window.scrollTo(0, 0);
}

async function send(statusBox) {
  var data = pageData();
  var payload = payloadFromForm(form, data.fields, data.language);
  var text = JSON.stringify(payload);
  if (!pending || pending.text !== text) {
    say(statusBox, t('sealing'), false);
    var recipients = data.keys.map(function (k) { return { publicKey: fromBase64url(k) }; });
    var envelope;
    try {
      envelope = await seal(payload, recipients);
    } catch (e) {
      // WebCrypto is there but cannot seal (an old engine without P-256, say): take the
      // path of browsers without it, where the server seals at once (SECURITY.md).
      form.submit();
      return;
    }
    pending = { text: text, envelope: toBase64url(envelope), code: newCode() };
  }
  say(statusBox, t('sending'), false);
  var response = await fetch(data.submitUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ envelope: pending.envelope, receipt_code: pending.code, language: data.language }),
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  var answer = {};
  try { answer = await response.json(); } catch (e) { answer = {}; }
  // 201 also answers a retry of this very envelope and code (the first answer was lost).
  if (response.status === 201) {
    showReceipt(pending.code);
    return;
  }
  // A refusal means this envelope will never be accepted: seal afresh next time. After a
  // server error the report may have been stored, so the same envelope is sent again.
  if (response.status < 500) pending = null;
  say(statusBox, answer.message || t('rejected'), true);
}

function onSubmit(event) {
  event.preventDefault();
  if (busy) return;
  var statusBox = document.getElementById('form-status');
  var what = form.elements.what;
  if (!what.value.trim()) {
    say(statusBox, t('what_required'), false);
    what.focus();
    return;
  }
  busy = true;
  var button = document.getElementById('send');
  button.disabled = true;
  send(statusBox).catch(function () {
    say(statusBox, t('send_failed'), true);
  }).then(function () {
    busy = false;
    button.disabled = false;
  });
}

if (form && canSeal) form.addEventListener('submit', onSubmit);
