// The offline queue and what else this device keeps in IndexedDB (database "intake", v2):
//   queue  {id: report id hex, body: the submission's JSON text, state: "waiting"|"refused",
//          error?: the server's code, bytes?: size of its attachments' chunks}. The body
//          holds only the envelope, the sealed receipt and, on a focal point's tablet, its
//          id and signature: ciphertext and a signature, never the report or its receipt
//          code (SECURITY.md, Formats 6 to 9). With attachments it also holds the upload's
//          random token and each attachment's id, size and chunk count (Formats 14).
//   chunks {id: report id hex, a: attachment number, i: chunk number, data: ciphertext}:
//          the attachments' encrypted chunks (Formats 13), never a byte of plaintext.
//   pins   {id: key id hex}: the organisation keys this device first sealed to.
//   focal  {id, name, privateKey}: a focal point's identity; the ECDSA key is
//          non-extractable and is stored as a CryptoKey, so no script can read it out.
// sw.js opens the same database with the same schema to send the queue in the background.
import { concat, toBase64url, utf8 } from './bytes.js';
import { jsonHeaders, pageData, t, show } from './page.js';

var NAME = 'intake';
var VERSION = 2; // 2 added the chunks store; sw.js opens it with the same schema
var FOCAL_LABEL = utf8('intake-focal-v1');
var connection = null;
var running = null;
var next = null;
// While this page is open it tries again by itself after a failed flush: when the server
// said how long to wait (503 busy, 429), after that long; otherwise after a delay that
// doubles from FIRST_RETRY. Jitter spreads many phones coming back at once.
var FIRST_RETRY = 15;
var MAX_RETRY = 300;
var backoff = 0;
var retryTimer = null;
var retryWith = null;

function open() {
  if (!connection) {
    connection = new Promise(function (resolve, reject) {
      var request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = function () {
        var db = request.result;
        ['queue', 'pins', 'focal'].forEach(function (store) {
          if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, { keyPath: 'id' });
        });
        if (!db.objectStoreNames.contains('chunks')) {
          db.createObjectStore('chunks', { keyPath: ['id', 'a', 'i'] });
        }
      };
      request.onsuccess = function () {
        var db = request.result;
        db.onversionchange = function () { db.close(); connection = null; };
        resolve(db);
      };
      request.onerror = function () { connection = null; reject(request.error); };
    });
  }
  return connection;
}

// Runs `work(store)` in one transaction and resolves, once it has committed, with the
// result of the last request `work` returned. "strict" asks the browser to flush to disk
// before saying so, where it supports the option; the others ignore it.
export function transaction(store, mode, work) {
  return open().then(function (db) {
    return new Promise(function (resolve, reject) {
      var tx = db.transaction(store, mode, { durability: 'strict' });
      var result;
      var request = work(Array.isArray(store) ? tx : tx.objectStore(store));
      if (request) request.onsuccess = function () { result = request.result; };
      tx.oncomplete = function () { resolve(result); };
      tx.onerror = tx.onabort = function () { reject(tx.error || new Error('IndexedDB failed')); };
    });
  });
}

function all(store) {
  return transaction(store, 'readonly', function (s) { return s.getAll(); });
}

// A report with attachments (`attachments`: each one's encrypted chunks) is kept by
// chunks.js, loaded only then, so that a first visit does not pay for it.
export function enqueue(id, body, attachments) {
  if (attachments) {
    return import('./chunks.js').then(function (m) { return m.enqueue(id, body, attachments); });
  }
  return transaction('queue', 'readwrite', function (s) {
    return s.add({ id: id, body: body, state: 'waiting' });
  });
}

// 'waiting', 'refused', or null once the report has left the queue, which happens only
// after the server stored it (sent from this page, another tab or the service worker).
export function stateOf(id) {
  return transaction('queue', 'readonly', function (s) { return s.get(id); })
    .then(function (item) { return item ? item.state : null; });
}

export function counts() {
  return all('queue').then(function (items) {
    var waiting = items.filter(function (item) { return item.state === 'waiting'; }).length;
    return { waiting: waiting, refused: items.length - waiting };
  });
}

// One item: 'sent' (delete it), 'refused' (keep, marked) or 'retry' (leave as it is).
// Only a 201 naming this very report counts as delivered: a captive portal or a proxy
// that answers 200 or 201 with its own page must not make a report vanish. A refusal is
// definitive only when it is one of our JSON errors; 408, 429 and any 4xx page from
// something in between are tried again later.
function outcome(response, answer, id) {
  if (response.status === 201) return answer.report_id === id ? 'sent' : 'retry';
  var ours = answer && typeof answer.error === 'string';
  if (response.status >= 400 && response.status < 500 && ours &&
      response.status !== 408 && response.status !== 429) return 'refused';
  return 'retry';
}

// An upload that hangs (a link that carries nothing but never fails) is given up after a
// minute, so that it cannot hold up every later flush; the next one sends it again.
var UPLOAD_TIMEOUT = 60000;

function post(url, item) {
  var abort = window.AbortController ? new AbortController() : null;
  var timer = abort && setTimeout(function () { abort.abort(); }, UPLOAD_TIMEOUT);
  return fetch(url, {
    method: 'POST', headers: jsonHeaders(), body: item.body,
    credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer', redirect: 'error',
    signal: abort ? abort.signal : undefined
  }).then(function (response) {
    return response.json().catch(function () { return {}; }).then(function (answer) {
      clearTimeout(timer);
      return { kind: outcome(response, answer, item.id), answer: answer,
        retryAfter: parseInt(response.headers.get('Retry-After'), 10) };
    });
  }, function (error) {
    clearTimeout(timer);
    throw error;
  });
}

async function flushOnce(url) {
  var result = { sent: [], refused: {}, stopped: false };
  var items = (await all('queue')).filter(function (item) { return item.state === 'waiting'; });
  for (var i = 0; i < items.length; i++) {
    var item = items[i];
    var done;
    try {
      done = item.bytes ? await (await import('./chunks.js')).deliver(item) : await post(url, item);
    } catch (e) {
      done = { kind: 'retry' };
    }
    if (done.kind === 'retry') {
      result.stopped = true; // no network, or the server is struggling: later, not harder
      result.retryAfter = done.retryAfter;
      break;
    }
    if (done.kind === 'sent') {
      if (item.bytes) await (await import('./chunks.js')).forget(item.id);
      else await transaction('queue', 'readwrite', function (s) { return s.delete(item.id); });
      result.sent.push(item.id);
    } else {
      // Never deleted: a refused report stays, marked, until someone exports it.
      item.state = 'refused';
      item.error = done.answer.error;
      await transaction('queue', 'readwrite', function (s) { return s.put(item); });
      result.refused[item.id] = done.answer.message || '';
    }
  }
  return result;
}

// Sends every waiting report, one after the other, and resolves with what happened:
// {sent: [ids], refused: {id: message}, stopped: true when the rest must wait}. One flush
// at a time in this page; a call during a flush runs once more after it. The service
// worker may send the same item at the same moment: the server answers a repeat of the
// very same body as it answered the first, so the report is still stored once.
export function flush() {
  var url = pageData().submitUrl;
  if (!running) {
    running = flushOnce(url).then(function (result) {
      running = null;
      if (result.stopped) {
        requestSync();
        retryLater(result.retryAfter);
      } else {
        backoff = 0;
      }
      return result;
    }, function (error) {
      running = null;
      throw error;
    });
    return running;
  }
  if (!next) {
    next = running.catch(function () {}).then(function () {
      next = null;
      return flush();
    });
  }
  return next;
}

// Nothing waits unseen: a queue stopped by a busy server (503 with Retry-After) or a
// failed connection is sent again from this page, without anyone pressing anything.
// Offline, the 'online' event does it instead (attachControl).
function retryLater(retryAfter) {
  if (retryTimer || navigator.onLine === false) return;
  backoff = Math.min(backoff ? backoff * 2 : FIRST_RETRY, MAX_RETRY);
  var seconds = retryAfter > 0 ? Math.min(retryAfter, MAX_RETRY) : backoff;
  retryTimer = setTimeout(function () {
    retryTimer = null;
    Promise.resolve((retryWith || flush)()).catch(function () {});
  }, seconds * 1000 * (1 + Math.random() / 2));
}

// Background Sync, where the browser has it, sends the queue even after the page is closed.
export function requestSync() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.getRegistration('/').then(function (registration) {
    if (registration && registration.sync) return registration.sync.register('intake-queue');
  }).catch(function () { /* no Background Sync: page load, online and Send now remain */ });
}

// The "waiting to be sent" control of the page, if it has one: hidden when nothing waits.
export function showCounts() {
  var box = document.getElementById('queue');
  if (!box) return Promise.resolve(null);
  return counts().then(function (n) {
    document.getElementById('queue-waiting').textContent = t('queue_waiting', { num: n.waiting });
    document.getElementById('queue-refused').textContent = t('queue_refused', { num: n.refused });
    show(document.getElementById('queue-waiting-row'), n.waiting > 0);
    show(document.getElementById('queue-refused'), n.refused > 0);
    show(box, n.waiting + n.refused > 0);
    return n;
  });
}

// Wires the control's "Send now" button; `after` gets each flush's result.
export function attachControl(after) {
  var button = document.getElementById('send-now');
  function sendNow() {
    if (button) button.disabled = true;
    return flush().then(after || function () {}, function () {}).then(function () {
      if (button) button.disabled = false;
      return showCounts();
    });
  }
  if (button) button.addEventListener('click', sendNow);
  window.addEventListener('online', sendNow);
  retryWith = sendNow; // a retry also updates what the page shows
  return sendNow;
}

// A queue file (SECURITY.md, Formats 9): every item, waiting or refused, as the exact
// submission body, for `intake import` on a tablet that can never get online. Nothing is
// removed from the queue: items still go out when there is a connection, and the server
// recognises a report that arrived by file as already there.
export async function exportFile() {
  var items = await all('queue');
  var bodies = [];
  for (var n = 0; n < items.length; n++) {
    var body = JSON.parse(items[n].body);
    if (items[n].bytes) body.chunks = await (await import('./chunks.js')).texts(items[n].id);
    bodies.push(body);
  }
  var file = JSON.stringify({ format: 'intake-queue', version: 1, items: bodies });
  var link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([file], { type: 'application/json' }));
  link.download = 'intake-queue.json';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  return items.length;
}

// Key pinning: the key ids (hex) this device has not sealed to before, or [] when all are
// known. The first time, every key is pinned and [] comes back (trust on first use).
export async function unpinnedKeys(ids) {
  var pinned = (await all('pins')).map(function (pin) { return pin.id; });
  if (!pinned.length) {
    await pin(ids);
    return [];
  }
  return ids.filter(function (id) { return pinned.indexOf(id) < 0; });
}

// Replaces the pins with these key ids (after the person chose to trust a changed key).
export function pin(ids) {
  return transaction('pins', 'readwrite', function (s) {
    s.clear();
    ids.forEach(function (id) { s.put({ id: id }); });
  });
}

export function focalIdentity() {
  return all('focal').then(function (items) { return items[0] || null; });
}

export function setFocalIdentity(identity) {
  return transaction('focal', 'readwrite', function (s) {
    s.clear();
    return s.put(identity);
  });
}

// The focal point's signature (SECURITY.md, Formats 8): ECDSA P-256 with SHA-256 over
// "intake-focal-v1" || SHA-256(envelope) || SHA-256(receipt field). WebCrypto's ECDSA
// output is already IEEE P1363 (r || s). Returns base64url.
export async function sign(privateKey, envelope, receiptField) {
  var digest = function (bytes) { return crypto.subtle.digest('SHA-256', bytes); };
  var message = concat(FOCAL_LABEL, new Uint8Array(await digest(envelope)),
    new Uint8Array(await digest(receiptField)));
  var signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' }, privateKey, message);
  return toBase64url(new Uint8Array(signature));
}
