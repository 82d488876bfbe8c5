// Attachments on a case page: fetched as ciphertext, opened on this computer with the
// report's key (attachment.js), then shown, played or saved from blob: URLs of bytes that
// exist only in this page's memory (the case page's CSP allows blob: for img and media,
// and nothing else does). Decrypted content is hostile input: a name is only ever text,
// a type only ever chooses between <img>, <audio>, <video> or nothing, and a download is
// always application/octet-stream, so the browser never renders it as a page.
import { entries, openAttachment } from './attachment.js';

var data = JSON.parse(document.getElementById('attachments-data').textContent);
var urls = [];

function t(name, params) {
  var text = data.strings[name] || name;
  return text.replace(/%\((\w+)\)s/g, function (_, p) { return params ? String(params[p]) : ''; });
}

function size(bytes) {
  var mb = 1024 * 1024;
  if (bytes >= mb) return t('size_mb', { num: (bytes / mb).toFixed(1) });
  return t('size_kb', { num: String(Math.max(1, Math.round(bytes / 1024))) });
}

function element(tag, className, text) {
  var el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// Only these plain media types reach a media element; anything else is offered as a file.
function viewer(type) {
  var match = /^(image|audio|video)\/[a-z0-9.+-]+(;[ a-z0-9=.,"+-]*)?$/i.exec(type || '');
  if (!match) return null;
  return { image: 'img', audio: 'audio', video: 'video' }[match[1].toLowerCase()];
}

function blobUrl(bytes, type) {
  var url = URL.createObjectURL(new Blob([bytes], { type: type }));
  urls.push(url);
  return url;
}

// The name a download is saved under: no path, no control characters.
function saveName(name) {
  var clean = name.replace(/[\/\\:*?"<>|\u0000-\u001f\u007f]/g, '_').replace(/^[.\s]+/, '');
  return clean || 'attachment';
}

async function fetchBytes(url) {
  var response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  if (!response.ok) throw new Error('http');
  return new Uint8Array(await response.arrayBuffer());
}

async function showOne(opened, entry, item) {
  var state = element('p', 'attachment-state', t('opening'));
  state.setAttribute('role', 'status');
  item.appendChild(state);
  var bytes;
  try {
    bytes = await fetchBytes(data.url + entry.id);
  } catch (error) {
    state.textContent = t('network');
    return;
  }
  var plain;
  try {
    plain = await openAttachment(opened, entry, bytes);
  } catch (error) {
    state.textContent = t('damaged');
    return;
  }
  state.remove();
  var tag = viewer(entry.type);
  if (tag) {
    var media = element(tag);
    media.src = blobUrl(plain, entry.type.split(';')[0]);
    if (tag === 'img') media.alt = entry.name;
    else {
      media.controls = true;
      media.preload = 'metadata';
      media.setAttribute('aria-label', entry.name);
    }
    item.appendChild(media);
  }
  var save = element('a', 'button secondary', t('save'));
  save.href = blobUrl(plain, 'application/octet-stream');
  save.download = saveName(entry.name);
  item.appendChild(save);
}

// Called by console.js once the report is open: one item per listed attachment.
export async function showAttachments(opened) {
  clearAttachments();
  var list = entries(opened.payload);
  var box = document.getElementById('attachments');
  if (!list.length || !box) return;
  var items = document.getElementById('attachment-items');
  box.classList.remove('hidden');
  for (var i = 0; i < list.length; i++) {
    var entry = list[i];
    var item = element('li', 'attachment');
    items.appendChild(item);
    if (!entry) {
      item.appendChild(element('p', 'attachment-state', t('damaged')));
      continue;
    }
    var title = element('p', 'attachment-title');
    var name = element('span', 'name', entry.name);
    name.setAttribute('dir', 'auto');
    title.appendChild(element('span', 'kind', t(entry.kind) + ' · '));
    title.appendChild(name);
    title.appendChild(element('span', 'size', ' · ' + size(entry.size)));
    item.appendChild(title);
    await showOne(opened, entry, item);
  }
}

// "Forget the key", logout: the decrypted bytes go with the page's references to them.
export function clearAttachments() {
  urls.forEach(function (url) { URL.revokeObjectURL(url); });
  urls = [];
  var items = document.getElementById('attachment-items');
  if (items) items.textContent = '';
  var box = document.getElementById('attachments');
  if (box) box.classList.add('hidden');
}
