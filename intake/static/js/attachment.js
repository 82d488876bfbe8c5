// Attachments (SECURITY.md, Formats 13): each file cut into chunks of 128 KiB, each chunk
// AES-256-GCM under a key derived with HKDF from the report's content key, bound to the
// report and the attachment. The nonce and the additional data name the chunk's place and
// whether it is the last, so that chunks cannot be reordered, dropped, repeated, moved to
// another attachment or report, or cut off at the end without opening failing.
// The same rules as intake/attachments.py and intake/crypto.py.
import { concat, fromHex, toHex, utf8 } from './bytes.js';
import { seal } from './envelope.js';

export var CHUNK = 131072;
var TAG = 16;
var FLAG_ATTACHMENTS = 0x02;
var KEY_LABEL = utf8('intake-attachment-v1/key');
var CHUNK_LABEL = utf8('intake-attachment-v1/chunk');
var KINDS = ['voice', 'photo', 'file'];

function random(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

function openError(message) {
  var error = new Error(message);
  error.name = 'AttachmentOpenError';
  return error;
}

export function chunkCount(size) {
  return Math.max(1, Math.ceil(size / CHUNK));
}

// 7 zero bytes, the index as 4 bytes big-endian, then 1 for the last chunk or 0.
export function nonce(index, final) {
  var out = new Uint8Array(12);
  new DataView(out.buffer).setUint32(7, index);
  out[11] = final ? 1 : 0;
  return out;
}

export function chunkAad(reportId, attachmentId, index, final) {
  return concat(CHUNK_LABEL, reportId, attachmentId, nonce(index, final).subarray(7));
}

// An attachment's AES-GCM key, from the content key imported as an HKDF key. An empty salt
// is HKDF's zero salt (RFC 5869), as in Python.
export function attachmentKey(secret, reportId, attachmentId, usage) {
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0),
      info: concat(KEY_LABEL, reportId, attachmentId) },
    secret, { name: 'AES-GCM', length: 256 }, false, [usage]);
}

async function sealChunks(secret, reportId, attachmentId, bytes) {
  var key = await attachmentKey(secret, reportId, attachmentId, 'encrypt');
  var n = chunkCount(bytes.length);
  var chunks = [];
  for (var i = 0; i < n; i++) {
    var final = i === n - 1;
    chunks.push(new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce(i, final), additionalData: chunkAad(reportId, attachmentId, i, final),
        tagLength: 128 },
      key, bytes.subarray(i * CHUNK, Math.min(bytes.length, (i + 1) * CHUNK)))));
  }
  return chunks;
}

// Seals a report with its attachments: `files` are {name, type, kind, bytes}. Returns the
// envelope (flag 0x02, the payload listing every attachment) and each attachment's id,
// declared sizes and chunks, in the payload's order.
export async function sealReport(payload, recipients, files, options) {
  if (!files.length) throw new RangeError('a report with attachments needs at least one');
  var contentKey = random(32);
  var reportId = random(16);
  var secret = await crypto.subtle.importKey('raw', contentKey, 'HKDF', false, ['deriveKey']);
  var listed = [];
  var sealed = [];
  try {
    for (var i = 0; i < files.length; i++) {
      var file = files[i];
      if (KINDS.indexOf(file.kind) < 0) throw new TypeError('unknown attachment kind');
      var id = random(16);
      var chunks = await sealChunks(secret, reportId, id, file.bytes);
      var digest = new Uint8Array(await crypto.subtle.digest('SHA-256', file.bytes));
      listed.push({ id: toHex(id), name: file.name, type: file.type || '', kind: file.kind,
        size: file.bytes.length, sha256: toHex(digest), chunks: chunks.length });
      var total = 0;
      chunks.forEach(function (c) { total += c.length; });
      sealed.push({ id: toHex(id), size: total, chunks: chunks });
    }
    var full = Object.assign({}, payload, { attachments: listed });
    var envelope = await seal(full, recipients, {
      flags: FLAG_ATTACHMENTS | ((options && options.flags) || 0), reportId: reportId,
      contentKey: contentKey
    });
    return { envelope: envelope, attachments: sealed };
  } finally {
    contentKey.fill(0);
  }
}

// The payload's list, each entry checked as intake/attachments.py checks it: an entry that
// breaks a rule is null (shown as damaged); the others open.
export function entries(payload) {
  var raw = payload && payload.attachments;
  if (!Array.isArray(raw)) return [];
  var seen = {};
  return raw.map(function (item) {
    var entry = checked(item);
    if (!entry || seen[entry.id]) return null;
    seen[entry.id] = true;
    return entry;
  });
}

function between(n, low, high) {
  return n >= low && n <= high;
}

function checked(item) {
  if (!item || typeof item !== 'object' || Array.isArray(item)) return null;
  var kind = item.kind === undefined ? 'file' : item.kind;
  var type = item.type === undefined ? '' : item.type;
  // Lengths in code points, as Python counts them (JavaScript's .length counts UTF-16 units).
  var ok = typeof item.id === 'string' && /^[0-9a-f]{32}$/.test(item.id) &&
    typeof item.name === 'string' && between(Array.from(item.name).length, 1, 255) &&
    typeof type === 'string' && Array.from(type).length <= 127 && KINDS.indexOf(kind) >= 0 &&
    Number.isSafeInteger(item.size) && item.size >= 0 && item.chunks === chunkCount(item.size) &&
    typeof item.sha256 === 'string' && /^[0-9a-f]{64}$/.test(item.sha256);
  return ok ? { id: item.id, name: item.name, type: type, kind: kind, size: item.size,
    sha256: item.sha256, chunks: item.chunks } : null;
}

// Opens one attachment of an opened report (envelope.js unseal(): its reportId and
// attachmentSecret) from its chunks as the server keeps them, one after the other. Every
// chunk must be there, in place, the last marked last, with the listed size and SHA-256;
// otherwise AttachmentOpenError and nothing.
export async function openAttachment(opened, entry, sealedBytes) {
  try {
    if (!opened.attachmentSecret || !entry) throw openError('nothing to open');
    var reportId = fromHex(opened.reportId);
    var id = fromHex(entry.id);
    var key = await attachmentKey(opened.attachmentSecret, reportId, id, 'decrypt');
    var expected = entry.size + TAG * entry.chunks;
    if (sealedBytes.length !== expected) throw openError('chunks are missing or extra');
    var out = new Uint8Array(entry.size);
    for (var i = 0; i < entry.chunks; i++) {
      var final = i === entry.chunks - 1;
      var start = i * (CHUNK + TAG);
      var end = final ? sealedBytes.length : start + CHUNK + TAG;
      var plain = new Uint8Array(await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: nonce(i, final), additionalData: chunkAad(reportId, id, i, final),
          tagLength: 128 },
        key, sealedBytes.subarray(start, end)));
      out.set(plain, i * CHUNK);
    }
    var digest = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', out)));
    if (digest !== entry.sha256) throw openError('the attachment does not match its SHA-256');
    return out;
  } catch (error) {
    throw openError('the attachment could not be opened');
  }
}
