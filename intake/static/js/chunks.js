// The offline queue's side for reports with attachments: their encrypted chunks in the
// "chunks" store of queue.js's database (SECURITY.md, Formats 13), and their upload
// (Formats 14, upload.js). Loaded only when such a report is queued, sent or exported, so
// that a first visit does not pay for it.
import { toBase64url } from './bytes.js';
import { pageData } from './page.js';
import { transaction } from './queue.js';

// The report and every chunk go in one transaction: all of it is kept, or none.
export function enqueue(id, body, attachments) {
  return transaction(['queue', 'chunks'], 'readwrite', function (tx) {
    var bytes = 0;
    var chunks = tx.objectStore('chunks');
    attachments.forEach(function (list, a) {
      list.forEach(function (data, i) {
        bytes += data.length;
        chunks.put({ id: id, a: a, i: i, data: data });
      });
    });
    return tx.objectStore('queue').add({ id: id, body: body, state: 'waiting', bytes: bytes });
  });
}

function chunkOf(id, a, i) {
  return transaction('chunks', 'readonly', function (s) { return s.get([id, a, i]); })
    .then(function (found) {
      if (!found) throw new Error('a chunk is missing from this device');
      return found.data;
    });
}

function all(id) {
  return IDBKeyRange.bound([id], [id, []]); // every [id, a, i], whatever a and i
}

// Removes a delivered report and its chunks together.
export function forget(id) {
  return transaction(['queue', 'chunks'], 'readwrite', function (tx) {
    tx.objectStore('chunks').delete(all(id));
    return tx.objectStore('queue').delete(id);
  });
}

// A report's chunks as base64url, one list per attachment, in order (Formats 9).
export function texts(id) {
  return transaction('chunks', 'readonly', function (s) { return s.getAll(all(id)); })
    .then(function (found) {
      var lists = [];
      found.forEach(function (chunk) { // in key order: by attachment, then by chunk
        (lists[chunk.a] = lists[chunk.a] || [])[chunk.i] = toBase64url(chunk.data);
      });
      return lists;
    });
}

// Who wants to hear how an upload advances: fn(report id, bytes sent, bytes in all).
var watchers = [];
export function onProgress(fn) {
  watchers.push(fn);
}

function tell(id, sent, total) {
  watchers.forEach(function (fn) { fn(id, sent, total); });
}

// The service worker says how the uploads it sends advance, so the page shows them too.
if (navigator.serviceWorker) {
  navigator.serviceWorker.addEventListener('message', function (event) {
    var data = event.data;
    if (data && data.type === 'intake-progress') tell(data.id, data.sent, data.total);
  });
}

// One upload at a time across this page, other tabs and the service worker (sw.js takes
// the same lock), where the browser has Web Locks: two senders of the same 20 MB on a 2G
// link would halve its speed.
function exclusively(work) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request('intake-upload', work);
  return work();
}

export async function deliver(item) {
  await import('./upload.js');
  return exclusively(function () {
    return self.intakeUpload.deliver(item, function (a, i) { return chunkOf(item.id, a, i); },
      function (sent, total) { tell(item.id, sent, total); }, pageData().language);
  });
}
