// A case page: unlock the officer's key file, open the report and the notes on this
// computer, and lock new notes before they leave it. The server only ever sees envelopes.
// Decrypted content is hostile input: it is only ever set as textContent, never as HTML.
import { fromBase64url, fromHex, toBase64url } from './bytes.js';
import { seal, unseal } from './envelope.js';
import { unlock } from './keyfile.js';
import { forgetKey, getKey, putKey } from './keyring_client.js';
import { clearAttachments, showAttachments } from './attachments.js';

var data = JSON.parse(document.getElementById('console-data').textContent);
var csrf = document.querySelector('meta[name="csrf-token"]').content;
var key = null;

function $(id) { return document.getElementById(id); }

function t(name, params) {
  var text = data.strings[name] || name;
  return text.replace(/%\((\w+)\)s/g, function (_, p) { return params ? String(params[p]) : ''; });
}

function say(id, text) {
  var el = $(id);
  el.textContent = text;
  el.classList.toggle('hidden', !text);
}

function showKey() {
  say('key-state', key ? t('unlocked', { id: key.keyId.slice(0, 16) }) : t('locked'));
  $('key-unlock').classList.toggle('hidden', !!key);
  $('key-forget').classList.toggle('hidden', !key);
}

async function onUnlock() {
  var file = $('key-file').files[0];
  var passphrase = $('key-passphrase').value;
  if (!file || !passphrase) { say('key-state', t('key_needed')); return; }
  say('key-state', t('unlocking'));
  try {
    var unlocked = await unlock(await file.text(), passphrase);
    key = await putKey(unlocked, data.idleMinutes) || unlocked;
    $('key-passphrase').value = '';
    $('key-file').value = '';
  } catch (error) {
    say('key-state', t('key_' + (error.reason || 'format')));
    return;
  }
  showKey();
}

async function fetchBytes(url) {
  var response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) throw new Error('session');
  if (!response.ok) throw new Error('http');
  return new Uint8Array(await response.arrayBuffer());
}

function choiceText(name, value) {
  var field = data.labels[name];
  if (value === true || value === false) {
    return field.choices[value ? 'yes' : 'no'] || String(value);
  }
  if (Array.isArray(value)) {
    return value.map(function (v) { return choiceText(name, v); }).join(', ');
  }
  if (typeof value !== 'string') return JSON.stringify(value);
  return (field && field.choices && field.choices[value]) || value;
}

function render(payload) {
  var list = $('report-content');
  list.textContent = '';
  var names = data.order.slice();
  // Anything else the payload holds is shown too, under its own name: it may matter.
  Object.keys(payload).forEach(function (name) {
    if (names.indexOf(name) < 0 && name !== 'schema' && name !== 'language' &&
        name !== 'attachments') names.push(name); // attachments.js shows those
  });
  names.forEach(function (name) {
    var dt = document.createElement('dt');
    var dd = document.createElement('dd');
    dt.textContent = data.labels[name] ? data.labels[name].label : name;
    var value = payload[name];
    dd.textContent = value === undefined || value === '' ? t('empty')
      : data.labels[name] ? choiceText(name, value) : JSON.stringify(value);
    dd.setAttribute('dir', 'auto');
    list.appendChild(dt);
    list.appendChild(dd);
  });
  list.classList.remove('hidden');
}

async function postJson(url, body) {
  var response = await fetch(url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf },
    body: JSON.stringify(body),
  });
  if (response.status === 401) throw new Error('session');
  return response;
}

async function recordConsent(payload) {
  if (data.consentRecorded) return;
  var response = await postJson(data.consentUrl, {
    refer: payload.consent_refer === true, share: payload.consent_share === true,
    statistics: payload.consent_statistics === true,
  });
  if (response.ok) {
    data.consentRecorded = true;
    $('consent-refer').textContent = data.consentTexts.refer[payload.consent_refer === true];
    $('consent-share').textContent = data.consentTexts.share[payload.consent_share === true];
    say('read-state', t('consent_recorded'));
  }
}

async function openNotes() {
  var items = document.querySelectorAll('#notes-list li[data-note]');
  for (var i = 0; i < items.length; i++) {
    var url = data.noteUrls[items[i].getAttribute('data-note')];
    var target = items[i].querySelector('.note-text');
    try {
      var opened = await unseal(await fetchBytes(url), key.privateKey, key.publicKey);
      target.textContent = typeof opened.payload.note === 'string' ? opened.payload.note : '';
      target.setAttribute('dir', 'auto');
    } catch (error) {
      target.textContent = t('not_for_key');
    }
  }
}

async function onRead() {
  key = key || await getKey(data.idleMinutes);
  if (!key) { showKey(); say('read-state', t('key_needed')); return; }
  say('read-state', t('decrypting'));
  var bytes;
  try {
    bytes = await fetchBytes(data.envelopeUrl);
  } catch (error) {
    say('read-state', t(error.message === 'session' ? 'session_over' : 'network'));
    return;
  }
  var opened;
  try {
    opened = await unseal(bytes, key.privateKey, key.publicKey);
  } catch (error) {
    say('read-state', t('not_for_key'));
    return;
  }
  say('read-state', opened.flags & 1 ? t('sealed_by_server') : '');
  render(opened.payload);
  showAttachments(opened);
  try {
    await recordConsent(opened.payload);
  } catch (error) {
    say('read-state', t('network'));
  }
  await openNotes();
}

async function onAddNote() {
  var text = $('note-text').value.trim();
  if (!text) { say('note-state', t('note_empty')); return; }
  key = key || await getKey(data.idleMinutes);
  say('note-state', t('note_saving'));
  try {
    var keys = data.keys.map(function (k) { return { publicKey: fromBase64url(k) }; });
    var envelope = await seal({ schema: 2, note: text }, keys, { reportId: fromHex(data.reportId) });
    var response = await postJson(data.notesUrl, { envelope: toBase64url(envelope) });
    if (response.status !== 201) throw new Error('refused');
  } catch (error) {
    // The text stays in the box: nothing typed is lost.
    say('note-state', t(error.message === 'session' ? 'session_over' : 'note_failed'));
    return;
  }
  var item = document.createElement('li');
  var body = document.createElement('span');
  body.className = 'note-text';
  body.setAttribute('dir', 'auto');
  body.textContent = text;
  item.appendChild(body);
  $('notes-list').appendChild(item);
  $('note-text').value = '';
  say('note-state', t('note_saved'));
}

async function onForget() {
  await forgetKey();
  key = null;
  $('report-content').textContent = '';
  $('report-content').classList.add('hidden');
  clearAttachments();
  document.querySelectorAll('#notes-list .note-text').forEach(function (el) { el.textContent = ''; });
  showKey();
  say('read-state', t('forgotten'));
}

$('key-unlock-button').addEventListener('click', onUnlock);
$('key-forget').addEventListener('click', onForget);
$('read-button').addEventListener('click', onRead);
$('note-add').addEventListener('click', onAddNote);
document.querySelectorAll('form[data-forget-key]').forEach(function (form) {
  form.addEventListener('submit', function () { forgetKey(); });
});
getKey(data.idleMinutes).then(function (found) { key = found; showKey(); });
