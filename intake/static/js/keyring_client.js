// Talks to the keyring shared worker (keyring.js). Where shared workers are missing, the
// key lives only in this page and is forgotten when the page goes.
var WORKER = new URL('./keyring.js', import.meta.url).href;
var port = null;
var local = null;
var queue = Promise.resolve(); // one question at a time: answers come back in order

function connect(idleMinutes) {
  if (port || typeof SharedWorker === 'undefined') return port;
  var worker = new SharedWorker(WORKER, { name: 'intake-keyring' });
  port = worker.port;
  port.start();
  if (idleMinutes) port.postMessage({ type: 'hello', idleMinutes: idleMinutes });
  return port;
}

function ask(message, idleMinutes) {
  var p = connect(idleMinutes);
  if (!p) {
    if (message.type === 'put') local = message;
    if (message.type === 'forget') local = null;
    return Promise.resolve(local);
  }
  queue = queue.then(function () {
    return new Promise(function (resolve) {
      p.onmessage = function (e) { resolve(e.data && e.data.key); };
      p.postMessage(message);
    });
  });
  return queue;
}

export function getKey(idleMinutes) { return ask({ type: 'get' }, idleMinutes); }

export function putKey(unlocked, idleMinutes) {
  return ask({ type: 'put', privateKey: unlocked.privateKey, publicKey: unlocked.publicKey,
    keyId: unlocked.keyId }, idleMinutes);
}

export function forgetKey() { return ask({ type: 'forget' }); }
