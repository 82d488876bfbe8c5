// The report envelope, version 1 (SECURITY.md sections 2 and 3): one random content
// key sealed with HPKE to every recipient, the padded JSON payload under AES-256-GCM with
// the whole header as additional data, so that no byte of it can be changed or moved.
import { concat, equal, toHex, utf8 } from './bytes.js';
import { suite } from './hpke.js';

var MAGIC = [0x49, 0x4e, 0x54, 0x4b]; // "INTK"
var VERSION = 1;
var SUITE = 1; // DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
var SCHEMA = 1; // a report
var SCHEMA_NOTE = 2; // an officer's note, sealed to the case's report id (Formats 10)
var KNOWN_FLAGS = 0x03; // 0x01 sealed by the server, 0x02 has attachments (Formats 13)
var FLAG_ATTACHMENTS = 0x02;
var PREFIX = 25;
var ENTRY = 145; // key id 32, enc 65, sealed content key 48
var ENC = 65;
var NONCE = 12;
var TAG = 16;
var BLOCK = 512;
var MAX_RECIPIENTS = 8;
var MAX_DEPTH = 64; // of nested objects and arrays in a payload we open
var LABEL = utf8('intake-envelope-v1/content-key');
var RECEIPT_LABEL = utf8('intake-receipt-v1');
var EMPTY = new Uint8Array(0);
var hpke = suite(0x0010, 0x0001, 0x0002);

function openError(message) {
  var error = new Error(message);
  error.name = 'EnvelopeOpenError';
  return error;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function random(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

function aesKey(raw, usage) {
  return crypto.subtle.importKey('raw', raw, 'AES-GCM', false, [usage]);
}

export async function keyId(publicKeyBytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', publicKeyBytes));
}

// The UTF-8 JSON followed by spaces up to a positive multiple of 512 bytes; the spaces are
// JSON whitespace, so the padded text parses as it is.
function pad(payload) {
  var json = utf8(JSON.stringify(payload));
  var out = new Uint8Array(Math.max(1, Math.ceil(json.length / BLOCK)) * BLOCK);
  out.fill(0x20);
  out.set(json);
  return out;
}

export async function seal(payload, recipients, options) {
  var flags = options && options.flags !== undefined ? options.flags : 0;
  if (flags !== (flags & KNOWN_FLAGS)) throw new RangeError('unknown envelope flags');
  // The header's schema byte states the payload's schema, so the two must agree.
  if (!isObject(payload) || (payload.schema !== SCHEMA && payload.schema !== SCHEMA_NOTE)) {
    throw new TypeError('the payload must be an object with schema 1 or 2');
  }
  var reportId = options && options.reportId;
  if (reportId !== undefined && !(reportId instanceof Uint8Array && reportId.length === 16)) {
    throw new TypeError('a report id is 16 bytes');
  }
  // Given only by attachment.js, which derived the attachments' keys from it first; it
  // zeroes its own copy.
  var givenKey = options && options.contentKey;
  if (givenKey !== undefined && !(givenKey instanceof Uint8Array && givenKey.length === 32)) {
    throw new TypeError('a content key is 32 bytes');
  }
  if (!Array.isArray(recipients)) throw new TypeError('recipients must be an array');
  var n = recipients.length;
  if (n < 1 || n > MAX_RECIPIENTS) throw new RangeError('an envelope has 1 to 8 recipients');
  var ids = [];
  for (var i = 0; i < n; i++) {
    ids.push(await keyId(recipients[i].publicKey));
    for (var j = 0; j < i; j++) {
      if (equal(ids[i], ids[j])) throw new RangeError('a recipient is listed twice');
    }
  }
  var contentKey = givenKey ? givenKey.slice() : random(32);
  var prefix = concat(MAGIC, [VERSION, SUITE, flags, payload.schema], reportId || random(16), [n]);
  var parts = [prefix];
  for (i = 0; i < n; i++) {
    var info = concat(LABEL, prefix, ids[i]);
    var sealed = await hpke.seal(recipients[i].publicKey, info, EMPTY, contentKey);
    parts.push(ids[i], sealed.enc, sealed.ct);
  }
  var header = concat.apply(null, parts);
  var nonce = random(NONCE);
  var key = await aesKey(contentKey, 'encrypt');
  contentKey.fill(0);
  var body = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: nonce, additionalData: header, tagLength: 128 }, key, pad(payload));
  return concat(header, nonce, new Uint8Array(body));
}

// The report id (16 bytes) of an envelope made by seal().
export function reportIdOf(envelope) {
  return envelope.subarray(8, 24);
}

// A sealed receipt (SECURITY.md, Formats 7): the receipt code and the interface language,
// sealed to the instance's receipt key and bound to the report id, so that a queued report
// holds no code anyone on the device could read, and its sealed code fits no other report.
export async function sealReceipt(code, language, reportId, receiptKey) {
  var sealed = await hpke.seal(
    receiptKey, concat(RECEIPT_LABEL, reportId), EMPTY, utf8(code + language));
  return concat(sealed.enc, sealed.ct);
}

// Splits an envelope after checking every shape rule of section 2 that needs no key.
function parse(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length < PREFIX + ENTRY + NONCE + TAG + BLOCK) {
    throw openError('too short to be an envelope');
  }
  for (var i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw openError('not an envelope');
  if (bytes[4] !== VERSION || bytes[5] !== SUITE ||
      (bytes[7] !== SCHEMA && bytes[7] !== SCHEMA_NOTE)) {
    throw openError('unknown envelope version, suite or schema');
  }
  if (bytes[6] & ~KNOWN_FLAGS) throw openError('reserved flag bits are set');
  var n = bytes[24];
  var headerLength = PREFIX + ENTRY * n;
  var bodyLength = bytes.length - headerLength - NONCE - TAG;
  if (n < 1 || n > MAX_RECIPIENTS || bodyLength < BLOCK || bodyLength % BLOCK) {
    throw openError('recipient count or payload length out of shape');
  }
  var entries = [];
  for (i = 0; i < n; i++) {
    var at = PREFIX + ENTRY * i;
    var entry = { id: bytes.subarray(at, at + 32), enc: bytes.subarray(at + 32, at + 32 + ENC),
      sealed: bytes.subarray(at + 32 + ENC, at + ENTRY) };
    for (var j = 0; j < i; j++) {
      if (equal(entry.id, entries[j].id)) throw openError('repeated key id');
    }
    entries.push(entry);
  }
  return { header: bytes.subarray(0, headerLength), entries: entries,
    nonce: bytes.subarray(headerLength, headerLength + NONCE),
    ciphertext: bytes.subarray(headerLength + NONCE) };
}

// False when valid JSON `text` names a member twice in one object or nests deeper than
// MAX_DEPTH. JSON.parse keeps the last of repeated members silently, other parsers the
// first, and intake.crypto refuses them: a payload saying "consent_share": false and then
// true must not read differently to different readers. Python's parser also fails on deep
// nesting (about 1,000 levels); schema 1 needs 2, so a low limit costs nothing.
function plainJson(text) {
  var stack = [];
  for (var i = 0; i < text.length; i++) {
    var c = text[i];
    var top = stack[stack.length - 1];
    if (c === '"') {
      var end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top && top.expectKey) {
        var key = JSON.parse(text.slice(i, end + 1)); // decoded: "a" and "\u0061" are one
        if (top.keys.has(key)) return false;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      if (stack.length === MAX_DEPTH) return false;
      stack.push(c === '{' ? { keys: new Set(), expectKey: true } : null);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',' && top) {
      top.expectKey = true;
    }
  }
  return true;
}

// One error for every failure, on purpose: which step failed is of no use to the reader
// and would tell a prober which byte to change next.
export async function unseal(bytes, privateKey, publicKeyBytes) {
  try {
    var env = parse(bytes);
    var ownId = await keyId(publicKeyBytes);
    var entry = env.entries.filter(function (e) { return equal(e.id, ownId); })[0];
    if (!entry) throw openError('not sealed to this key');
    var info = concat(LABEL, env.header.subarray(0, PREFIX), ownId);
    var contentKey = await hpke.open(
      entry.enc, privateKey, publicKeyBytes, info, EMPTY, entry.sealed);
    if (contentKey.length !== 32) throw openError('content key of the wrong length');
    var key = await aesKey(contentKey, 'decrypt');
    // With attachments, what opens them: an HKDF key that cannot be read out of WebCrypto.
    var secret = bytes[6] & FLAG_ATTACHMENTS ? await crypto.subtle.importKey(
      'raw', contentKey, 'HKDF', false, ['deriveKey']) : null;
    contentKey.fill(0);
    var padded = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: env.nonce, additionalData: env.header, tagLength: 128 },
      key, env.ciphertext);
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM keeps a BOM so that JSON.parse
    // refuses it, as Python's json does.
    var text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(padded);
    var payload = JSON.parse(text);
    if (!isObject(payload) || !plainJson(text)) throw openError('not a plain JSON object');
    var opened = {
      reportId: toHex(bytes.subarray(8, 24)), flags: bytes[6], schema: bytes[7], payload: payload
    };
    if (secret) opened.attachmentSecret = secret;
    return opened;
  } catch (error) {
    throw openError('the envelope could not be opened');
  }
}
