// Opens an officer's private key file (SECURITY.md, Formats 5) into a non-extractable
// WebCrypto key that lives only in this page's memory. The file is never uploaded.
import { concat, equal, fromBase64url, toHex, utf8 } from './bytes.js';

var MIN_ITERATIONS = 600000;
var MAX_ITERATIONS = 10000000; // bounds the time a hostile file can make us spend
var P256 = { name: 'ECDH', namedCurve: 'P-256' };
var subtle = crypto.subtle;

// `reason` lets the page say which: 'format' (not a key file we can read), 'passphrase'
// (wrong passphrase, or the encrypted part is damaged: GCM cannot tell them apart) or
// 'mismatch' (the private key is not the one the file names).
function keyFileError(reason, message) {
  var error = new Error(message);
  error.name = 'KeyFileError';
  error.reason = reason;
  return error;
}

function bytesOf(text, length) {
  var out = fromBase64url(text);
  if (length && out.length !== length) throw new TypeError('wrong length');
  return out;
}

function parse(jsonText) {
  var doc = JSON.parse(typeof jsonText === 'string' ? jsonText
    : new TextDecoder('utf-8', { fatal: true }).decode(jsonText));
  var kdf = doc.kdf;
  var ok = doc.format === 'intake-private-key' && doc.version === 1 &&
    doc.kem === 'DHKEM(P-256, HKDF-SHA256)' && kdf && kdf.name === 'PBKDF2-HMAC-SHA256' &&
    Number.isInteger(kdf.iterations) &&
    kdf.iterations >= MIN_ITERATIONS && kdf.iterations <= MAX_ITERATIONS &&
    typeof doc.key_id === 'string';
  if (!ok) throw new TypeError('not a key file of a version we know');
  return {
    keyId: doc.key_id, publicKey: bytesOf(doc.public_key, 65), iterations: kdf.iterations,
    salt: bytesOf(kdf.salt, 16), nonce: bytesOf(doc.nonce, 12), ciphertext: bytesOf(doc.ciphertext)
  };
}

// Proves that `privateKey` belongs to `publicKey` without exporting it: a fresh ephemeral
// key e gives the same shared secret d*E == e*P only if P is d*G.
async function matches(privateKey, publicKey) {
  var pub = await subtle.importKey('raw', publicKey, P256, false, []);
  var e = await subtle.generateKey(P256, false, ['deriveBits']);
  var one = await subtle.deriveBits({ name: 'ECDH', public: e.publicKey }, privateKey, 256);
  var two = await subtle.deriveBits({ name: 'ECDH', public: pub }, e.privateKey, 256);
  return equal(new Uint8Array(one), new Uint8Array(two));
}

export async function unlock(jsonText, passphrase) {
  if (typeof passphrase !== 'string') throw new TypeError('the passphrase must be a string');
  var file;
  try {
    file = parse(jsonText);
    var id = toHex(new Uint8Array(await subtle.digest('SHA-256', file.publicKey)));
    if (id !== file.keyId) throw new TypeError('key id does not match the public key');
  } catch (error) {
    throw keyFileError('format', 'this is not a key file, or it is damaged');
  }
  var der;
  try {
    var secret = utf8(passphrase.normalize('NFC'));
    var base = await subtle.importKey('raw', secret, 'PBKDF2', false, ['deriveKey']);
    var wrapping = await subtle.deriveKey(
      { name: 'PBKDF2', hash: 'SHA-256', salt: file.salt, iterations: file.iterations },
      base, { name: 'AES-GCM', length: 256 }, false, ['decrypt']);
    secret.fill(0);
    var aad = concat(utf8('intake-private-key/v1'), [0], file.publicKey);
    der = new Uint8Array(await subtle.decrypt(
      { name: 'AES-GCM', iv: file.nonce, additionalData: aad, tagLength: 128 },
      wrapping, file.ciphertext));
  } catch (error) {
    throw keyFileError('passphrase', 'wrong passphrase, or the key file is damaged');
  }
  try {
    var privateKey = await subtle.importKey('pkcs8', der, P256, false, ['deriveBits']);
    if (!(await matches(privateKey, file.publicKey))) throw new Error('mismatch');
  } catch (error) {
    throw keyFileError('mismatch', 'the private key does not match the key file');
  } finally {
    der.fill(0);
  }
  return { privateKey: privateKey, publicKey: file.publicKey, keyId: file.keyId };
}
