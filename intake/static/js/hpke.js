// HPKE (RFC 9180), base mode only, on WebCrypto. Only the suites every browser we support
// can run natively: DHKEM over P-256 or P-521, HKDF-SHA256 or -SHA512, AES-GCM. Anything
// else (X25519, ChaCha20-Poly1305, other modes) is refused by name rather than attempted,
// because a half-supported suite would produce ciphertext nobody can open.
import { concat, toBase64url, utf8 } from './bytes.js';

var subtle = crypto.subtle;

// Nsecret = Nh of the KEM's own KDF; Ndh = Npk coordinate size (RFC 9180 section 7.1).
var KEMS = {
  16: { curve: 'P-256', hash: 'SHA-256', nh: 32, ndh: 32 },
  18: { curve: 'P-521', hash: 'SHA-512', nh: 64, ndh: 66 }
};
var KDFS = { 1: { hash: 'SHA-256', nh: 32 }, 3: { hash: 'SHA-512', nh: 64 } };
var AEADS = { 1: 16, 2: 32 }; // Nk; Nn is 12 and Nt 16 for both.
var NN = 12;
var MODE_BASE = new Uint8Array([0]);
var VERSION = utf8('HPKE-v1');

function named(name, message) {
  var error = new Error(message);
  error.name = name;
  return error;
}

// Own, numeric keys only: a string id or 'constructor' must not find an entry.
function pick(table, id) {
  var own = typeof id === 'number' && Object.prototype.hasOwnProperty.call(table, id);
  return own ? table[id] : null;
}

function i2osp(n, length) {
  var out = new Uint8Array(length);
  for (var i = length - 1; i >= 0 && n > 0; i--) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return out;
}

async function hmac(hash, key, data) {
  var k = await subtle.importKey('raw', key, { name: 'HMAC', hash: hash }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}

// LabeledExtract and LabeledExpand (RFC 9180 section 4) over HKDF built from HMAC, because
// WebCrypto's HKDF cannot run Extract and Expand separately.
function labeled(hash, nh, suiteId) {
  return {
    extract: function (salt, label, ikm) {
      // WebCrypto refuses an empty HMAC key; HMAC pads keys with zeros to the block size,
      // so Nh zero bytes is the same key as the empty salt (RFC 5869 section 2.2).
      var key = salt.length ? salt : new Uint8Array(nh);
      return hmac(hash, key, concat(VERSION, suiteId, utf8(label), ikm));
    },
    expand: async function (prk, label, info, length) {
      var labeledInfo = concat(i2osp(length, 2), VERSION, suiteId, utf8(label), info);
      var out = new Uint8Array(Math.ceil(length / nh) * nh);
      var block = new Uint8Array(0);
      for (var i = 0; i * nh < length; i++) {
        block = await hmac(hash, prk, concat(block, labeledInfo, new Uint8Array([i + 1])));
        out.set(block, i * nh);
      }
      return out.slice(0, length);
    }
  };
}

// An ECDH private key from its raw scalar and public point, non-extractable. JWK is the
// only import format that takes a bare scalar. WebCrypto checks that the point is on the
// curve; Chromium also checks that it belongs to the scalar, but not every engine is known
// to, so a caller that needs that certainty must check it separately.
export async function importPrivateKey(kemId, sk, pkm) {
  var kem = pick(KEMS, kemId);
  if (!kem) throw named('HpkeUnsupported', 'HPKE KEM ' + kemId + ' is not supported');
  if (sk.length !== kem.ndh || pkm.length !== 1 + 2 * kem.ndh || pkm[0] !== 4) {
    throw named('HpkeInvalidKey', 'key lengths do not match ' + kem.curve);
  }
  var b64 = toBase64url;
  var jwk = {
    kty: 'EC', crv: kem.curve, ext: false, d: b64(sk),
    x: b64(pkm.subarray(1, 1 + kem.ndh)), y: b64(pkm.subarray(1 + kem.ndh))
  };
  var usages = ['deriveBits'];
  return subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: kem.curve }, false, usages)
    .catch(function () { throw named('HpkeInvalidKey', 'not a ' + kem.curve + ' key pair'); });
}

export function suite(kemId, kdfId, aeadId) {
  var kem = pick(KEMS, kemId);
  var kdf = pick(KDFS, kdfId);
  var nk = pick(AEADS, aeadId);
  if (!kem || !kdf || !nk) {
    throw named('HpkeUnsupported',
      'HPKE suite ' + [kemId, kdfId, aeadId].join('/') + ' is not supported here');
  }
  var npk = 1 + 2 * kem.ndh;
  var kemKdf = labeled(kem.hash, kem.nh, concat(utf8('KEM'), i2osp(kemId, 2)));
  var hpkeId = concat(utf8('HPKE'), i2osp(kemId, 2), i2osp(kdfId, 2), i2osp(aeadId, 2));
  var keyKdf = labeled(kdf.hash, kdf.nh, hpkeId);
  var ecdh = { name: 'ECDH', namedCurve: kem.curve };

  // DeserializePublicKey: uncompressed points only, as RFC 9180 section 7.1.1 requires;
  // importKey then rejects points that are not on the curve.
  function importPublic(pkm) {
    if (!(pkm instanceof Uint8Array) || pkm.length !== npk || pkm[0] !== 4) {
      return Promise.reject(named('HpkeInvalidKey', 'not an uncompressed point'));
    }
    return subtle.importKey('raw', pkm, ecdh, false, []).catch(function () {
      throw named('HpkeInvalidKey', 'not a point on ' + kem.curve);
    });
  }

  async function sharedSecret(publicKey, privateKey, kemContext) {
    var ecdhPublic = { name: 'ECDH', public: publicKey };
    var dh = await subtle.deriveBits(ecdhPublic, privateKey, 8 * kem.ndh);
    var prk = await kemKdf.extract(new Uint8Array(0), 'eae_prk', new Uint8Array(dh));
    return kemKdf.expand(prk, 'shared_secret', kemContext, kem.nh);
  }

  // Encap (section 4.1). `ekm` fixes the ephemeral key pair, for known-answer tests only.
  async function encap(pkRm, ekm) {
    var pkR = await importPublic(pkRm);
    var pair = ekm;
    if (!pair) {
      var fresh = await subtle.generateKey(ecdh, false, ['deriveBits']);
      pair = { privateKey: fresh.privateKey,
        publicKey: new Uint8Array(await subtle.exportKey('raw', fresh.publicKey)) };
    }
    var enc = pair.publicKey;
    return { enc: enc, sharedSecret: await sharedSecret(pkR, pair.privateKey, concat(enc, pkRm)) };
  }

  async function decap(enc, skR, pkRm) {
    var pkE = await importPublic(enc);
    return sharedSecret(pkE, skR, concat(enc, pkRm));
  }

  // KeySchedule (section 5.1) for mode_base, with empty psk and psk_id.
  async function keySchedule(shared, info) {
    var empty = new Uint8Array(0);
    var context = concat(MODE_BASE,
      await keyKdf.extract(empty, 'psk_id_hash', empty),
      await keyKdf.extract(empty, 'info_hash', info));
    var secret = await keyKdf.extract(shared, 'secret', empty);
    return {
      keyScheduleContext: context,
      secret: secret,
      key: await keyKdf.expand(secret, 'key', context, nk),
      baseNonce: await keyKdf.expand(secret, 'base_nonce', context, NN),
      exporterSecret: await keyKdf.expand(secret, 'exp', context, kdf.nh)
    };
  }

  async function context(shared, info) {
    var ks = await keySchedule(shared, info);
    var key = await subtle.importKey('raw', ks.key, 'AES-GCM', false, ['encrypt', 'decrypt']);
    ks.key.fill(0);
    ks.secret.fill(0);
    return makeContext(key, ks.baseNonce);
  }

  var api = {
    encap: encap,
    decap: decap,
    keySchedule: keySchedule,
    setupBaseS: async function (pkRm, info, ekm) {
      var e = await encap(pkRm, ekm);
      return { enc: e.enc, ctx: await context(e.sharedSecret, info) };
    },
    setupBaseR: async function (enc, skR, pkRm, info) {
      try {
        return await context(await decap(enc, skR, pkRm), info);
      } catch (error) {
        throw named('HpkeOpenError', 'HPKE decapsulation failed');
      }
    },
    seal: async function (pkRm, info, aad, pt) {
      var s = await api.setupBaseS(pkRm, info);
      return { enc: s.enc, ct: await s.ctx.seal(aad, pt) };
    },
    open: async function (enc, skR, pkRm, info, aad, ct) {
      return (await api.setupBaseR(enc, skR, pkRm, info)).open(aad, ct);
    }
  };
  return api;
}

// An encryption context (section 5.2): nonce = base_nonce XOR I2OSP(seq, Nn). Sequence
// numbers stop at 2^53 - 1, far below the RFC's limit, because JS numbers are exact only
// that far; no real context comes near either.
function makeContext(key, baseNonce) {
  var seq = 0;
  function nonce(n) {
    var out = i2osp(n, NN);
    for (var i = 0; i < NN; i++) out[i] ^= baseNonce[i];
    return out;
  }
  function params(n, aad) {
    return { name: 'AES-GCM', iv: nonce(n), additionalData: aad, tagLength: 128 };
  }
  return {
    seal: async function (aad, pt) {
      if (seq >= Number.MAX_SAFE_INTEGER) throw named('HpkeMessageLimit', 'HPKE message limit');
      // Take the sequence number before awaiting, so overlapping calls never share a nonce.
      var n = seq++;
      return new Uint8Array(await subtle.encrypt(params(n, aad), key, pt));
    },
    // Opens must be awaited in order: the sequence number moves only on success, so a
    // forged message cannot desynchronise the context (section 5.2).
    open: async function (aad, ct) {
      var n = seq;
      var pt;
      try {
        pt = await subtle.decrypt(params(n, aad), key, ct);
      } catch (error) {
        throw named('HpkeOpenError', 'HPKE open failed');
      }
      seq = n + 1;
      return new Uint8Array(pt);
    }
  };
}
