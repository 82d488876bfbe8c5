// Sending a report with attachments (SECURITY.md, Formats 14), for the page and the
// service worker alike: open (or resume) the upload with the envelope, then send each
// attachment's chunks in order from where the server says it stands, until it answers 201.
// A classic script with no import or export, so that sw.js can load it with importScripts
// and the page with import(); it sets self.intakeUpload. Storage is the caller's.
(function (root) {
  'use strict';

  var START = '/api/uploads'; // page data's uploadUrl
  var CHUNK = 131072; // plaintext bytes of every chunk but the last (Formats 13)
  var TAG = 16;
  var STALLS = 3; // answers in a row that move nothing forward, before giving up for now

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // A request that carries nothing for long is given up: a minute, plus a second per KB,
  // so that a chunk still gets through on a link of 8 kbit/s.
  async function request(url, init, bytes) {
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, 60000 + bytes);
    try {
      var response = await fetch(url, Object.assign({
        credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer', redirect: 'error',
        signal: abort.signal
      }, init));
      var answer = await response.json().catch(function () { return {}; });
      return { status: response.status, answer: answer || {},
        retryAfter: parseInt(response.headers.get('Retry-After'), 10) };
    } finally {
      clearTimeout(timer);
    }
  }

  // On a 2G link a connection drops and comes back within seconds: try the same request
  // again after 0.25, 1, 3 and 8 s; null when it never got through. Every request here
  // may be repeated safely: the server answers a repeat as it answered the first.
  var PAUSES = [250, 1000, 3000, 8000];
  async function persist(url, init, bytes) {
    for (var attempt = 0; ; attempt++) {
      try {
        return await request(url, init, bytes);
      } catch (error) {
        if (attempt >= PAUSES.length) return null;
        await wait(PAUSES[attempt]);
      }
    }
  }

  // As for a report without attachments (queue.js): only a 201 naming this report is
  // delivery; only one of our JSON 4xx errors is a refusal; anything else waits.
  function settled(reply, id) {
    if (reply.status === 201) return reply.answer.report_id === id ? 'sent' : 'retry';
    var ours = typeof reply.answer.error === 'string';
    if (reply.status >= 400 && reply.status < 500 && ours && reply.status !== 408 &&
        reply.status !== 429) return 'refused';
    return 'retry';
  }

  function receivedOf(answer, declared) {
    var got = answer.received;
    if (!Array.isArray(got) || got.length !== declared.length) return null;
    for (var a = 0; a < got.length; a++) {
      if (!Number.isInteger(got[a]) || got[a] < 0 || got[a] > declared[a].chunks) return null;
    }
    return got;
  }

  function sentBytes(received, declared) {
    var sent = 0;
    declared.forEach(function (item, a) {
      sent += received[a] === item.chunks ? item.size : received[a] * (CHUNK + TAG);
    });
    return sent;
  }

  // item: {id, body} as queued; readChunk(a, i) resolves to the bytes of chunk i of
  // attachment a; onProgress(sent, total) after every answer; language, when known, the
  // language of the server's messages. Resolves to {kind: 'sent' | 'refused' | 'retry',
  // answer}.
  async function deliver(item, readChunk, onProgress, language) {
    function headers(type, more) {
      var out = Object.assign({ 'Content-Type': type }, more);
      if (language) out['Accept-Language'] = language;
      return out;
    }
    var body = JSON.parse(item.body);
    var declared = body.attachments;
    var total = declared.reduce(function (n, a) { return n + a.size; }, 0);
    var received = null;
    var stalls = 0;
    var reply;
    for (;;) {
      if (!received) {
        reply = await persist(START, {
          method: 'POST', headers: headers('application/json'), body: item.body
        }, item.body.length);
        if (!reply) return { kind: 'retry' };
        received = reply.status === 202 ? receivedOf(reply.answer, declared) : null;
        // A busy server (503) says when to come back: queue.js waits that long.
        if (!received) {
          return { kind: settled(reply, item.id), answer: reply.answer,
            retryAfter: reply.retryAfter };
        }
      }
      var before = sentBytes(received, declared);
      if (onProgress) onProgress(before, total);
      var a = received.findIndex(function (n, k) { return n < declared[k].chunks; });
      if (a < 0) {
        received = null; // all there, yet no 201: ask where the upload stands
        if (++stalls > STALLS) return { kind: 'retry' };
        continue;
      }
      var index = received[a];
      var data = await readChunk(a, index);
      reply = await persist(START + '/' + item.id + '/' + declared[a].id + '/' + index, {
        method: 'PUT', body: data,
        headers: headers('application/octet-stream', { 'X-Upload-Token': body.upload_token })
      }, data.length);
      if (!reply) return { kind: 'retry' };
      if (reply.status === 201) {
        if (onProgress) onProgress(total, total);
        return { kind: settled(reply, item.id), answer: reply.answer };
      }
      var moved = (reply.status === 202 ||
        (reply.status === 409 && reply.answer.error === 'chunk_out_of_order')) &&
        receivedOf(reply.answer, declared);
      if (reply.status === 404 && reply.answer.error === 'upload_unknown') {
        moved = null; // purged while the device waited, or just finished: open it again
      } else if (!moved) {
        return { kind: settled(reply, item.id), answer: reply.answer };
      }
      received = moved;
      stalls = moved && sentBytes(moved, declared) > before ? 0 : stalls + 1;
      if (stalls > STALLS) return { kind: 'retry' };
    }
  }

  root.intakeUpload = { deliver: deliver, CHUNK: CHUNK };
})(self);
