// Photos, a voice note, videos and documents on the report form. They are held in this
// page's memory only, as the browser's File and Blob objects, until the report is sealed
// (attachment.js) and only ciphertext is queued; nothing here writes to any storage.
// Loaded by report.js the first time the person touches the attachments section, so that
// a first visit does not pay for it. Every name is shown as text, never as HTML.
import { toBase64url } from './bytes.js';
import { pageData, say, show, t as pageText } from './page.js';
import * as progress from './progress.js';
import * as voice from './voice.js';
// Sealing and queueing come with this module, so that a report whose photos were chosen
// online can be sealed and kept after the connection is gone, even where no service
// worker keeps the files.
import { sealReport } from './attachment.js';
import { onProgress } from './chunks.js';

var formatSize = progress.formatSize;
var strings = {};

// This section's words, in the page's language (intake/report/media.py): fetched with
// this module, not carried in every page, and kept by the service worker for offline use.
function wordsUrl() {
  try {
    return '/' + pageData().language + '/media.json';
  } catch (e) {
    return null; // a page without page data (a test page): no words to fetch
  }
}

export var ready = (wordsUrl() ? fetch(wordsUrl(), { credentials: 'omit' }) : Promise.reject())
  .then(function (response) { return response.json(); })
  .then(function (found) { strings = found; }, function () { /* offline, no worker */ })
  .then(function () {
    progress.useWords(t);
    return { handle: handle, count: count, problem: problem, revision: revision, seal: seal,
      cannotSeal: cannotSeal, upload: upload, take: take, restore: restore, clear: clear,
      forget: forget };
  });

// A translated string of this section; %(name)s and %(name)d replaced from `params`.
function t(key, params) {
  var text = strings[key] || key;
  return text.replace(/%\((\w+)\)[sd]/g, function (all, name) {
    return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : all;
  });
}

onProgress(function (id, sent, total) { progress.update(id, sent, total); });

var MAX_SIDE = 1600; // pixels: a smaller copy still shows a face, a badge or a number plate
var QUALITY = 0.8;
// What may be sent, by type, or by extension when the browser gives no type.
var TYPES = /^(image\/|audio\/|video\/|application\/pdf$|text\/plain$|application\/rtf$|application\/msword$|application\/vnd\.openxmlformats-officedocument\.wordprocessingml\.document$|application\/vnd\.oasis\.opendocument\.text$)/;
var EXTENSIONS = /\.(jpe?g|png|gif|webp|heic|heif|mp3|m4a|aac|ogg|oga|opus|wav|amr|3gp|3gpp|mp4|mov|webm|mkv|pdf|txt|rtf|docx?|odt)$/i;

var items = []; // {key, kind, name, type, original, blob, note}
var voiceNote = null; // {blob, name, type, url}
var recording = null;
var nextKey = 1;
var changes = 0; // goes up with every change, so that a sealed copy can tell it is stale
// Photos are made smaller one change at a time; sealing waits for the last change.
var pending = Promise.resolve();

function inTurn(work) {
  pending = pending.then(work, work);
  return pending;
}

function $(id) { return document.getElementById(id); }

function limits() {
  var data = pageData();
  return { bytes: data.maxAttachmentBytes, count: data.maxAttachments };
}

function smallerWanted() {
  var choice = document.querySelector('input[name="photo-size"]:checked');
  return !choice || choice.value === 'smaller';
}

// A smaller copy drawn on a canvas: the pixels only, so EXIF data (where and when the
// photo was taken, the phone's make) is left behind. The orientation is applied first.
export async function shrink(file) {
  var bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  var canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  if (bitmap.close) bitmap.close();
  var blob = await new Promise(function (resolve) { canvas.toBlob(resolve, 'image/jpeg', QUALITY); });
  canvas.width = canvas.height = 0;
  if (!blob) throw new Error('the photo could not be made smaller');
  return blob;
}

function jpegName(name) {
  return name.replace(/\.[^.]*$/, '') + '.jpg';
}

async function prepare(item) {
  item.note = '';
  if (item.kind !== 'photo' || !smallerWanted()) {
    item.blob = item.original;
    item.name = item.originalName;
    item.type = item.original.type;
    return;
  }
  try {
    item.blob = await shrink(item.original);
    item.name = jpegName(item.originalName);
    item.type = 'image/jpeg';
  } catch (error) {
    // A type this browser cannot draw (HEIC on many phones): sent as it is, and said so.
    item.blob = item.original;
    item.name = item.originalName;
    item.type = item.original.type;
    item.note = t('attach_not_smaller');
  }
}

function allowed(file) {
  return TYPES.test(file.type || '') || (!file.type && EXTENSIONS.test(file.name));
}

function kindOf(file) {
  return /^image\//.test(file.type || '') || /\.(jpe?g|png|gif|webp|heic|heif)$/i.test(file.name)
    ? 'photo' : 'file';
}

function totalBytes() {
  var sum = voiceNote ? voiceNote.blob.size : 0;
  items.forEach(function (item) { sum += item.blob.size; });
  return sum;
}

function count() {
  return items.length + (voiceNote ? 1 : 0);
}

// What stops the report from being sent as it is, in words, or null.
function problem() {
  var limit = limits();
  if (count() > limit.count) return t('attach_too_many', { num: limit.count });
  if (totalBytes() > limit.bytes) {
    return t('attach_too_big', { total: formatSize(totalBytes()), max: formatSize(limit.bytes) });
  }
  if (recording) return t('voice_still_recording');
  return null;
}

function revision() {
  return changes;
}

function render() {
  changes += 1;
  var list = $('attachment-list');
  list.textContent = '';
  items.forEach(function (item) {
    var li = document.createElement('li');
    var name = document.createElement('span');
    name.className = 'name';
    name.dir = 'auto';
    name.textContent = item.name;
    var size = document.createElement('span');
    size.className = 'size';
    size.textContent = formatSize(item.blob.size) + (item.note ? ' · ' + item.note : '');
    var remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'secondary';
    remove.setAttribute('data-remove', String(item.key));
    remove.textContent = t('attach_remove');
    remove.setAttribute('aria-label', t('attach_remove_named', { name: item.name }));
    li.appendChild(name);
    li.appendChild(size);
    li.appendChild(remove);
    list.appendChild(li);
  });
  show(list, items.length > 0);
  var trouble = problem();
  var status = $('attachment-status');
  if (trouble) say(status, trouble, false);
  else if (count()) say(status, t('attach_total', { total: formatSize(totalBytes()) }), false);
  else show(status, false);
  show($('photo-size'), items.some(function (item) { return item.kind === 'photo'; }));
}

async function add(fileList) {
  var refused = [];
  var files = fileList;
  if (files.length) say($('attachment-status'), t('attach_preparing'), false);
  for (var i = 0; i < files.length; i++) {
    var file = files[i];
    if (!allowed(file)) { refused.push(file.name); continue; }
    var item = { key: nextKey++, kind: kindOf(file), originalName: file.name, original: file };
    await prepare(item);
    items.push(item);
  }
  render();
  if (refused.length) say($('attachment-status'), t('attach_type', { name: refused.join(', ') }), false);
}

async function photoChoiceChanged() {
  say($('attachment-status'), t('attach_preparing'), false);
  for (var i = 0; i < items.length; i++) await prepare(items[i]);
  render();
}

function showVoice() {
  var done = !!voiceNote;
  show($('voice-record'), !recording && !done);
  show($('voice-stop'), !!recording);
  show($('voice-done'), done);
  if (done) {
    $('voice-audio').src = voiceNote.url;
    say($('voice-state'), t('voice_ready', { size: formatSize(voiceNote.blob.size) }), false);
  } else if (!recording) {
    $('voice-audio').removeAttribute('src');
  }
}

function dropVoice() {
  if (voiceNote) URL.revokeObjectURL(voiceNote.url);
  voiceNote = null;
}

function clock(seconds) {
  var s = seconds % 60;
  return Math.floor(seconds / 60) + ':' + (s < 10 ? '0' : '') + s;
}

async function startRecording() {
  dropVoice();
  say($('voice-state'), t('voice_starting'), false);
  try {
    recording = await voice.record(function (seconds) {
      say($('voice-state'), t('voice_recording', { time: clock(seconds) }), false);
    }, function (blob) {
      recording = null;
      var type = blob.type || 'audio/webm';
      voiceNote = { blob: blob, type: type, name: 'voice-note.' + voice.extension(type),
        url: URL.createObjectURL(blob) };
      showVoice();
      render();
    });
  } catch (error) {
    recording = null;
    say($('voice-state'), t('voice_no_microphone'), true);
  }
  showVoice();
  if (recording) {
    say($('voice-state'), t('voice_recording', { time: clock(0) }), false);
    $('voice-stop').focus();
  }
}

function onClick(button) {
  if (button.id === 'voice-record' || button.id === 'voice-again') return startRecording();
  if (button.id === 'voice-stop' && recording) return recording.stop();
  if (button.id === 'voice-delete') {
    dropVoice();
    showVoice();
    say($('voice-state'), t('voice_deleted'), false);
    render();
    $('voice-record').focus();
    return;
  }
  var key = button.getAttribute('data-remove');
  if (key) {
    items = items.filter(function (item) { return String(item.key) !== key; });
    render();
  }
}

function onChange(input) {
  if (input.name === 'photo-size') return inTurn(photoChoiceChanged);
  if (input.type === 'file') {
    var files = Array.prototype.slice.call(input.files || []);
    // The files stay in memory here; the input forgets their names.
    input.value = '';
    return inTurn(function () { return add(files); });
  }
}

// Whatever the person did in the section: report.js hands every click and change here.
function handle(event) {
  if (event.type === 'change') return onChange(event.target);
  var button = event.target.closest('button');
  if (button) return onClick(button);
}

// The attachments to seal, in order (the voice note first), with their bytes.
async function files() {
  await pending;
  var out = [];
  if (voiceNote) {
    out.push({ name: voiceNote.name, type: voiceNote.type, kind: 'voice',
      bytes: new Uint8Array(await voiceNote.blob.arrayBuffer()) });
  }
  for (var i = 0; i < items.length; i++) {
    out.push({ name: items[i].name, type: items[i].type || '', kind: items[i].kind,
      bytes: new Uint8Array(await items[i].blob.arrayBuffer()) });
  }
  return out;
}

// Seals the report with its attachments: the envelope, what the upload declares (with its
// own random token, Formats 14: only this device can add chunks to it), and the chunks.
async function seal(payload, recipients) {
  var sealed = await sealReport(payload, recipients, await files());
  return {
    envelope: sealed.envelope,
    declaration: {
      upload_token: toBase64url(crypto.getRandomValues(new Uint8Array(32))),
      attachments: sealed.attachments.map(function (a) {
        return { id: a.id, size: a.size, chunks: a.chunks.length };
      })
    },
    chunks: sealed.attachments.map(function (a) { return a.chunks; })
  };
}

function cannotSeal() {
  return t('attach_cannot_seal');
}

// Without IndexedDB nothing can be queued: the report and its chunks go from memory, at
// once, with the progress in words. Resolves to 'sent', 'refused' or 'retry'.
async function upload(saved, statusBox) {
  await import('./upload.js');
  var done = await self.intakeUpload.deliver(
    { id: saved.id, body: saved.body },
    function (a, i) { return Promise.resolve(saved.chunks[a][i]); },
    function (sent, total) {
      say(statusBox, t('upload_sent', { sent: formatSize(sent), total: formatSize(total) }), false);
    }, pageData().language);
  if (done.kind !== 'sent') {
    say(statusBox, (done.answer && done.answer.message) || pageText('send_failed'), true);
  }
  return done.kind;
}

// Everything attached, handed over (to keep with the draft until the report is
// delivered), and the section emptied; restore() puts it back. The upload of report `id`
// shows its progress on the receipt screen.
function take(id) {
  progress.watch(id);
  if (recording) recording.stop();
  var state = { items: items, voiceNote: voiceNote };
  items = [];
  voiceNote = null;
  showVoice();
  render();
  show($('voice-state'), false);
  return state;
}

function restore(state) {
  if (!state) return;
  items = state.items;
  voiceNote = state.voiceNote;
  showVoice();
  render();
}

// "Next person", idle time: nothing of the last person stays in memory.
function clear() {
  var state = take();
  if (state.voiceNote) URL.revokeObjectURL(state.voiceNote.url);
}

function forget(state) {
  if (state && state.voiceNote) URL.revokeObjectURL(state.voiceNote.url);
}
