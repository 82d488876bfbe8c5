// The officer's unlocked key, held in memory by a shared worker so that it survives moving
// from one console page to the next without being written anywhere. It holds a
// non-extractable CryptoKey (the private key's bytes cannot be read back out, even by our
// own code), and forgets it after the console's idle time, when asked (logout, the login
// page), or when the last console tab closes and the browser ends the worker.
'use strict';

var held = null;
var timer = null;
var idleMs = 30 * 60 * 1000;

function forget() {
  held = null;
  if (timer) clearTimeout(timer);
  timer = null;
}

function touch() {
  if (timer) clearTimeout(timer);
  timer = setTimeout(forget, idleMs);
}

function acceptable(m) {
  return m.privateKey instanceof CryptoKey && m.privateKey.extractable === false &&
    m.publicKey instanceof Uint8Array && typeof m.keyId === 'string';
}

self.onconnect = function (event) {
  var port = event.ports[0];
  port.onmessage = function (e) {
    var m = e.data || {};
    if (typeof m.idleMinutes === 'number' && m.idleMinutes > 0) idleMs = m.idleMinutes * 60000;
    if (m.type === 'put' && acceptable(m)) {
      held = { privateKey: m.privateKey, publicKey: m.publicKey, keyId: m.keyId };
      touch();
    } else if (m.type === 'forget') {
      forget();
    } else if (m.type === 'get' && held) {
      touch();
    }
    port.postMessage({ type: 'key', key: held });
  };
};
