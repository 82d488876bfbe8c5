// The report form: seal on this device, queue the ciphertext, show the receipt code at
// once, send when there is a connection. Online and offline look the same to the person.
// Without WebCrypto (or without modules at all) this file does nothing and the form posts
// to the server, which seals it there (SECURITY.md, flag 0x01).

import { keyId, reportIdOf, seal, sealReceipt } from './envelope.js';
import { newCode, format } from './receipt.js';
import { fromBase64url, toBase64url, toHex } from './bytes.js';
import { jsonHeaders, pageData, t, say, show } from './page.js';
import * as queue from './queue.js';

var form = document.getElementById('report-form');
var canSeal = window.isSecureContext && window.crypto && crypto.subtle && window.fetch;
var $ = function (id) { return document.getElementById(id); };

var busy = false;
var trustNewKeys = false; // the person chose "Send anyway" for this page's keys
// The report whose code is on screen: its id and, in memory only, what the form held, so
// that a report the server refuses can be corrected and sent again (nothing is lost).
var shown = null;
// Without IndexedDB (some private windows) nothing can be queued: the report goes straight
// to the server, and this keeps the last sealed one so that a retry resends the same.
var direct = null;
var focal = null;
var idleTimer = null;
// Photos, voice note and files (media.js), loaded the first time the person touches them,
// so that a first visit does not pay for them; `media` is the module once it is there.
var media = null;
var mediaLoading = null;

function mediaModule() {
  if (!mediaLoading) {
    mediaLoading = import('./media.js').then(function (m) { return m.ready; })
      .then(function (m) { media = m; return m; });
  }
  return mediaLoading;
}

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

function inputs() {
  return Array.prototype.filter.call(form.elements, function (el) {
    return /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) && el.type !== 'hidden';
  });
}

function snapshot() {
  return inputs().map(function (el) {
    return el.type === 'checkbox' || el.type === 'radio' ? el.checked : el.value;
  });
}

function restore(values) {
  inputs().forEach(function (el, i) {
    if (el.type === 'checkbox' || el.type === 'radio') el.checked = values[i];
    else el.value = values[i];
  });
}

function showReceipt(code, id) {
  // Nothing of the report stays in the page: the fields are emptied, and no history entry
  // or storage was ever written. The draft (with its attachments, in memory) lives in this
  // variable until the report is delivered or refused, and goes with "Next person", idle
  // time or quick exit.
  shown = { id: id, draft: snapshot(), attachments: media ? media.take(id) : null };
  form.reset();
  show($('report'), false);
  show($('form-status'), false);
  show($('back-to-report'), false);
  $('receipt-code').textContent = format(code);
  say($('delivery'), navigator.onLine === false ? t('delivery_waiting') : t('sending'), false);
  show($('done'), true);
  $('done').focus();
  window.scrollTo(0, 0);
}

// What the last flush means for the report on screen. Its place in the queue decides,
// not who sent it: the service worker or another tab may have delivered it first.
function delivered(result) {
  if (!shown) return;
  var id = shown.id;
  return queue.stateOf(id).then(function (state) {
    if (!shown || shown.id !== id) return;
    if (state === null) {
      say($('delivery'), t('delivery_sent'), false);
      shown.draft = null;
      if (media) media.forget(shown.attachments);
      shown.attachments = null;
    } else if (state === 'refused') {
      var message = result && result.refused[id];
      say($('delivery'), t('delivery_refused') + (message ? ' ' + message : ''), false);
      show($('back-to-report'), !!shown.draft);
    } else if (!result || result.stopped) {
      say($('delivery'), t('delivery_waiting'), false);
    }
  });
}

function sendQueue() {
  return queue.flush().then(delivered, function () {}).then(queue.showCounts)
    .catch(function () {});
}

// Empties the form and any receipt on screen: "Next person", idle time on a focal tablet.
function clearAll() {
  form.reset();
  if (media) {
    media.clear();
    if (shown) media.forget(shown.attachments);
  }
  shown = null;
  direct = null;
  $('receipt-code').textContent = '';
  ['done', 'form-status', 'key-warning'].forEach(function (id) { show($(id), false); });
  show($('report'), true);
  window.scrollTo(0, 0);
}

// The organisation keys of this page that this device has not sealed to before.
async function changedKeys(keys) {
  var ids = [];
  for (var i = 0; i < keys.length; i++) ids.push(toHex(await keyId(keys[i])));
  if (trustNewKeys) {
    await queue.pin(ids).catch(function () {});
    trustNewKeys = false;
    return [];
  }
  // No IndexedDB: nothing to compare with, as on a first visit.
  return queue.unpinnedKeys(ids).catch(function () { return []; });
}

function warnKeys(ids) {
  var list = $('key-warning-list');
  list.textContent = '';
  ids.forEach(function (id) {
    var line = document.createElement('p');
    line.className = 'fingerprint';
    line.dir = 'ltr';
    line.textContent = id.match(/.{4}/g).join(' ');
    list.appendChild(line);
  });
  show($('form-status'), false);
  show($('key-warning'), true);
  $('key-warning').focus();
}

async function sendDirect(envelope, code, statusBox) {
  if (direct && direct.chunks) {
    // With attachments, from memory, the receipt shown only once every chunk is stored.
    var saved = direct;
    var kind = await media.upload(saved, statusBox);
    if (kind !== 'retry') direct = null;
    if (kind === 'sent') {
      showReceipt(code, saved.id);
      say($('delivery'), t('delivery_sent'), false);
    }
    return;
  }
  var data = pageData();
  say(statusBox, t('sending'), false);
  var response = await fetch(data.submitUrl, {
    method: 'POST',
    headers: jsonHeaders(),
    body: JSON.stringify({ envelope: envelope, receipt_code: code, language: data.language }),
    credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer'
  });
  var answer = {};
  try { answer = await response.json(); } catch (e) { answer = {}; }
  // 201 also answers a retry of this very envelope and code (the first answer was lost).
  if (response.status === 201) {
    direct = null;
    showReceipt(code, answer.report_id);
    say($('delivery'), t('delivery_sent'), false);
    return;
  }
  // A refusal means this envelope will never be accepted: seal afresh next time. After a
  // server error the report may have been stored, so the same envelope is sent again.
  if (response.status < 500) direct = null;
  say(statusBox, answer.message || t('rejected'), true);
}

async function send(statusBox) {
  var data = pageData();
  var payload = payloadFromForm(form, data.fields, data.language);
  var text = JSON.stringify(payload);
  var revision = media ? media.revision() : 0;
  if (direct && direct.text === text && direct.revision === revision) {
    return sendDirect(direct.envelope, direct.code, statusBox);
  }
  var keys = data.keys.map(fromBase64url);
  var changed = await changedKeys(keys);
  if (changed.length) return warnKeys(changed);
  say(statusBox, t('sealing'), false);
  var envelope, sealedReceipt, sealed;
  var code = newCode();
  var recipients = keys.map(function (k) { return { publicKey: k }; });
  try {
    // With attachments: {envelope, declaration, chunks} (Formats 13 and 14).
    sealed = media && media.count() ? await media.seal(payload, recipients) : null;
    envelope = sealed ? sealed.envelope : await seal(payload, recipients);
    sealedReceipt = await sealReceipt(
      code, data.language, reportIdOf(envelope), fromBase64url(data.receiptKey));
  } catch (e) {
    // WebCrypto is there but cannot seal (an old engine without P-256, say): take the
    // path of browsers without it, where the server seals at once (SECURITY.md). That
    // path takes no attachments: the person must remove them first, and is told so.
    if (media && media.count()) return say(statusBox, media.cannotSeal(), true);
    form.submit();
    return;
  }
  var id = toHex(reportIdOf(envelope));
  var body = Object.assign({ envelope: toBase64url(envelope),
    sealed_receipt: toBase64url(sealedReceipt) }, sealed && sealed.declaration);
  if (focal) {
    body.focal_point = focal.id;
    body.signature = await queue.sign(focal.privateKey, envelope, sealedReceipt);
  }
  var chunks = sealed && sealed.chunks;
  try {
    // Queued before anything is shown or sent: if the page dies now, the report is safe.
    await queue.enqueue(id, JSON.stringify(body), chunks);
  } catch (e) {
    direct = { text: text, revision: revision, envelope: body.envelope, code: code, id: id,
      body: JSON.stringify(body), chunks: chunks };
    return sendDirect(direct.envelope, code, statusBox);
  }
  showReceipt(code, id);
  queue.requestSync();
  // Not awaited: on a slow link the upload may take minutes, and the next person on a
  // focal point's tablet must not wait for it.
  sendQueue();
}

function onSubmit(event) {
  event.preventDefault();
  start();
}

function start() {
  if (busy) return;
  var statusBox = $('form-status');
  var what = form.elements.what;
  show($('key-warning'), false);
  // A voice note or a photo may be the whole report: then nothing need be written.
  if (!what.value.trim() && !(media && media.count())) {
    say(statusBox, t('what_required'), false);
    what.focus();
    return;
  }
  var trouble = media && media.problem();
  if (trouble) {
    say(statusBox, trouble, false);
    $('attachment-status').focus();
    return;
  }
  busy = true;
  var button = $('send');
  button.disabled = true;
  ready.then(function () { return send(statusBox); }).catch(function () {
    say(statusBox, t('send_failed'), true);
  }).then(function () {
    busy = false;
    button.disabled = false;
  });
}

function onKeysAnswer(accept) {
  show($('key-warning'), false);
  if (accept) {
    trustNewKeys = true;
    start();
  } else {
    say($('form-status'), t('not_sent'), true);
  }
}

function backToReport() {
  if (!shown || !shown.draft) return;
  restore(shown.draft);
  if (media) media.restore(shown.attachments);
  shown = null;
  show($('done'), false);
  show($('report'), true);
  say($('form-status'), t('send_again'), true);
}

// A focal point's shared tablet: a banner, "Next person", and everything emptied after
// some minutes without input, so that the next person sees nothing of the last one.
function startFocal(identity) {
  focal = identity;
  say($('focal-banner'), t('focal_banner', { name: identity.name }), false);
  show($('next-person'), true);
  var idle = Math.max(1, pageData().idleMinutes || 5) * 60000;
  var arm = function () {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(clearAll, idle);
  };
  ['input', 'keydown', 'pointerdown', 'touchstart'].forEach(function (name) {
    document.addEventListener(name, arm, { capture: true, passive: true });
  });
  arm();
}

var ready = Promise.resolve();
if (form && canSeal) {
  form.addEventListener('submit', onSubmit);
  $('keys-accept').addEventListener('click', function () { onKeysAnswer(true); });
  $('keys-reject').addEventListener('click', function () { onKeysAnswer(false); });
  $('back-to-report').addEventListener('click', backToReport);
  $('next-person').addEventListener('click', function () {
    clearAll();
    form.elements.what.focus();
  });
  ready = queue.focalIdentity().then(function (identity) {
    if (identity) startFocal(identity);
  }).catch(function () { /* no IndexedDB: an ordinary phone */ });
  queue.attachControl(delivered);
  queue.showCounts().catch(function () {});
  setUpAttachments();
  sendQueue();
}

// The attachments section exists only where the report can be sealed here; its inputs
// belong to another, empty form, so that the no-JavaScript post never carries them.
function setUpAttachments() {
  var box = $('attachments');
  show(box, true);
  show($('attachments-nojs'), false);
  show($('voice'), !!(window.MediaRecorder && navigator.mediaDevices));
  ['click', 'change'].forEach(function (type) {
    box.addEventListener(type, function (event) {
      mediaModule().then(function (m) { return m.handle(event); });
    });
  });
}
