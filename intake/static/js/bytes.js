// Byte-string helpers shared by the crypto modules: concatenation, UTF-8, hex and
// base64url (SECURITY.md: hex is lowercase, base64url has no padding).

export function concat() {
  var total = 0;
  var i;
  for (i = 0; i < arguments.length; i++) total += arguments[i].length;
  var out = new Uint8Array(total);
  var at = 0;
  for (i = 0; i < arguments.length; i++) {
    out.set(arguments[i], at);
    at += arguments[i].length;
  }
  return out;
}

export function utf8(text) {
  return new TextEncoder().encode(text);
}

// Compares without an early exit; the cost is nothing and it removes one thing to think
// about wherever secrets are compared.
export function equal(a, b) {
  if (a.length !== b.length) return false;
  var diff = 0;
  for (var i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  var out = '';
  for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return out;
}

export function fromHex(text) {
  if (typeof text !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(text)) {
    throw new TypeError('not lowercase hex');
  }
  var out = new Uint8Array(text.length / 2);
  for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}

export function toBase64url(bytes) {
  var binary = '';
  for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// Strict: the base64url alphabet only (atob alone would skip whitespace), and only the
// canonical encoding, so that one byte string has exactly one text form, as in Python.
export function fromBase64url(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new TypeError('not base64url');
  }
  var binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  var out = new Uint8Array(binary.length);
  for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  if (toBase64url(out) !== text) throw new TypeError('not canonical base64url');
  return out;
}
