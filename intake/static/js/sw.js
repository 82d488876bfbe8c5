// The service worker: keeps the application shell for offline use and sends the queue.
// A classic script, not a module, because module workers need Safari 15 and Firefox 111.
// What it keeps: the pages of /offline.json fetched with ?shell=1 (no CSRF token, no
// per-visit id) and the static files. Never a response to a POST, never a status, nothing
// a person typed. The queue logic mirrors queue.js (same database, same rules).
'use strict';

// The upload of reports with attachments, shared with the page (Formats 14).
importScripts('/static/js/upload.js');

var PREFIX = 'intake-shell-';
var TIMEOUT = 4000; // ms before a page falls back to its kept copy
var EXIT = '/n'; // page data's exitUrl: kept too, so quick exit works offline
var SUBMIT = '/api/reports'; // page data's submitUrl
var UPLOAD_TIMEOUT = 60000; // as in queue.js
var installed = null; // this worker's cache name, set by install
var flushing = null;

function copyOf(response) {
  // A fresh response without the fetch's URL, redirect flag or transfer encoding.
  var headers = new Headers(response.headers);
  headers.delete('Content-Encoding');
  headers.delete('Content-Length');
  return response.blob().then(function (body) {
    return new Response(body, { status: response.status, statusText: response.statusText,
      headers: headers });
  });
}

function fetchOk(url) {
  return fetch(url, { cache: 'reload', credentials: 'omit', redirect: 'error' })
    .then(function (response) {
      if (!response.ok) throw new Error(url + ': ' + response.status);
      return response;
    });
}

async function precache() {
  var manifest = await (await fetchOk('/offline.json')).json();
  var name = PREFIX + manifest.version;
  var cache = await caches.open(name);
  try {
    var pages = manifest.pages.concat([EXIT]);
    await Promise.all(pages.map(function (page) {
      var url = page === EXIT ? page : page + '?shell=1';
      return fetchOk(url).then(copyOf).then(function (copy) { return cache.put(page, copy); });
    }));
    await Promise.all(manifest.assets.map(function (asset) {
      return fetchOk(asset).then(function (response) { return cache.put(asset, response); });
    }));
  } catch (error) {
    await caches.delete(name); // never leave a half-filled shell behind
    throw error;
  }
  installed = name;
}

self.addEventListener('install', function (event) {
  event.waitUntil(precache().then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    var ours = names.filter(function (n) { return n.indexOf(PREFIX) === 0; });
    // Without `installed` (the worker was restarted between install and activate), the
    // newest cache is this version's: install made it last.
    var keep = installed || ours[ours.length - 1];
    return Promise.all(ours.filter(function (n) { return n !== keep; }).map(function (n) {
      return caches.delete(n);
    }));
  }).then(function () { return self.clients.claim(); }));
});

function keptPage(path) {
  return caches.match(new URL(path, self.location.origin).href, { ignoreVary: true });
}

// Network first; the kept copy when the network fails, answers 5xx, or is slower than
// TIMEOUT. A page that was never kept goes to the network alone.
function page(request, path) {
  return keptPage(path).then(function (kept) {
    if (!kept) return fetch(request);
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { resolve(kept); }, TIMEOUT);
      fetch(request).then(function (response) {
        clearTimeout(timer);
        resolve(response.status >= 500 ? kept : response);
      }, function () {
        clearTimeout(timer);
        resolve(kept);
      });
    });
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== 'GET') {
    // A status check posted without a connection gets the kept offline page instead of
    // the browser's error page. The answer, online, is passed through and never kept.
    var status = /^\/([a-z]{2,8})\/status$/.exec(url.pathname);
    if (request.mode === 'navigate' && status) {
      event.respondWith(fetch(request).catch(function () {
        return keptPage('/' + status[1] + '/offline').then(function (kept) {
          return kept || Response.error();
        });
      }));
    }
    return;
  }
  if (url.pathname.indexOf('/static/') === 0) {
    event.respondWith(caches.match(request, { ignoreVary: true }).then(function (kept) {
      return kept || fetch(request);
    }));
  } else if (url.pathname === EXIT) {
    // Quick exit must be instant, connection or not.
    event.respondWith(keptPage(EXIT).then(function (kept) { return kept || fetch(request); }));
  } else if (request.mode === 'navigate' || /^\/[a-z]{2,8}\/media\.json$/.test(url.pathname)) {
    // media.json: the attachments section's words (report/media.py), kept like a page.
    event.respondWith(page(request, url.pathname));
  }
});

// The queue (see queue.js for the rules): delete after a 201 naming the report, mark
// refused after one of our JSON 4xx errors, stop at anything else and try again later.
function openDb() {
  return new Promise(function (resolve, reject) {
    var request = indexedDB.open('intake', 2);
    request.onupgradeneeded = function () {
      var db = request.result;
      ['queue', 'pins', 'focal'].forEach(function (store) {
        if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, { keyPath: 'id' });
      });
      if (!db.objectStoreNames.contains('chunks')) {
        db.createObjectStore('chunks', { keyPath: ['id', 'a', 'i'] });
      }
    };
    request.onsuccess = function () { resolve(request.result); };
    request.onerror = function () { reject(request.error); };
  });
}

function inStores(db, stores, mode, work) {
  return new Promise(function (resolve, reject) {
    var tx = db.transaction(stores, mode, { durability: 'strict' });
    var request = work(tx);
    tx.oncomplete = function () { resolve(request && request.result); };
    tx.onerror = tx.onabort = function () { reject(tx.error); };
  });
}

function inQueue(db, mode, work) {
  return inStores(db, 'queue', mode, function (tx) { return work(tx.objectStore('queue')); });
}

// A report with attachments: upload.js sends it, reading its chunks from the database,
// one upload at a time with the pages (queue.js exclusively()), telling them how it goes.
function sendUpload(db, item) {
  function readChunk(a, i) {
    return inStores(db, 'chunks', 'readonly', function (tx) {
      return tx.objectStore('chunks').get([item.id, a, i]);
    }).then(function (found) {
      if (!found) throw new Error('a chunk is missing');
      return found.data;
    });
  }
  function progress(sent, total) {
    self.clients.matchAll({ type: 'window' }).then(function (pages) {
      pages.forEach(function (page) {
        page.postMessage({ type: 'intake-progress', id: item.id, sent: sent, total: total });
      });
    });
  }
  function send() { return self.intakeUpload.deliver(item, readChunk, progress); }
  return self.navigator.locks ? self.navigator.locks.request('intake-upload', send) : send();
}

async function sendPlain(item) {
  var abort = new AbortController();
  var timer = setTimeout(function () { abort.abort(); }, UPLOAD_TIMEOUT);
  var response, answer;
  try {
    response = await fetch(SUBMIT, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: item.body,
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      redirect: 'error', signal: abort.signal
    });
    answer = await response.json().catch(function () { return {}; });
  } finally {
    clearTimeout(timer);
  }
  var ours = answer && typeof answer.error === 'string';
  if (response.status === 201 && answer.report_id === item.id) return { kind: 'sent' };
  if (response.status >= 400 && response.status < 500 && ours &&
      response.status !== 408 && response.status !== 429) return { kind: 'refused', answer: answer };
  return { kind: 'retry' };
}

async function flushOnce() {
  var db = await openDb();
  try {
    var items = await inQueue(db, 'readonly', function (s) { return s.getAll(); });
    var waiting = items.filter(function (item) { return item.state === 'waiting'; });
    for (var i = 0; i < waiting.length; i++) {
      var item = waiting[i];
      var done = item.bytes ? await sendUpload(db, item) : await sendPlain(item);
      if (done.kind === 'sent') {
        await inStores(db, ['queue', 'chunks'], 'readwrite', function (tx) {
          tx.objectStore('chunks').delete(IDBKeyRange.bound([item.id], [item.id, []]));
          return tx.objectStore('queue').delete(item.id);
        });
      } else if (done.kind === 'refused') {
        item.state = 'refused';
        item.error = done.answer.error;
        await inQueue(db, 'readwrite', function (s) { return s.put(item); });
      } else {
        throw new Error('the queue must wait');
      }
    }
  } finally {
    db.close();
  }
}

// Rejects while reports must wait, so that Background Sync tries again later.
function flush() {
  if (!flushing) {
    flushing = flushOnce().then(function () { flushing = null; }, function (error) {
      flushing = null;
      throw error;
    });
  }
  return flushing;
}

self.addEventListener('sync', function (event) {
  if (event.tag === 'intake-queue') event.waitUntil(flush());
});

// Each time the browser starts this worker (a page opened, a sync), the queue is tried.
flush().catch(function () { /* offline, or nothing to send: the next start tries again */ });
