"""What a browser keeps on the device for the intake: service worker, IndexedDB, caches.

Used by the offline tests to wait for the worker and to dump every store, so that a test
can search them for what a person typed.
"""

from __future__ import annotations

import json
from typing import Any

_DUMP_INDEXEDDB = """async () => {
  const names = indexedDB.databases ? (await indexedDB.databases()).map(d => d.name) : ['intake'];
  const out = {};
  for (const name of names) {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open(name);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    out[name] = {};
    for (const store of Array.from(db.objectStoreNames)) {
      out[name][store] = await new Promise((resolve, reject) => {
        const request = db.transaction(store).objectStore(store).getAll();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    db.close();
  }
  // A CryptoKey has no JSON form: describe it, including whether it could be exported.
  return JSON.stringify(out, (key, value) => value instanceof CryptoKey
    ? {cryptoKey: value.type, extractable: value.extractable, algorithm: value.algorithm,
       usages: value.usages}
    : value);
}"""

_DUMP_CACHES = """async () => {
  const out = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      out.push({cache: name, url: request.url, status: response.status,
                body: await response.text()});
    }
  }
  return out;
}"""

_PUT_PINS = """async (ids) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open('intake');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  await new Promise((resolve, reject) => {
    const tx = db.transaction('pins', 'readwrite');
    tx.objectStore('pins').clear();
    for (const id of ids) tx.objectStore('pins').put({id});
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}"""


def wait_for_worker(page: Any) -> None:
    """Wait until the service worker is active (its install, which keeps the shell, is
    done) and controls this page."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    if not page.evaluate("!!navigator.serviceWorker.controller"):
        page.reload()
    assert page.evaluate("!!navigator.serviceWorker.controller"), "no service worker"


def indexeddb(page: Any) -> dict[str, Any]:
    """Every IndexedDB database of the page's origin: {database: {store: [values]}}."""
    dump: dict[str, Any] = json.loads(page.evaluate(_DUMP_INDEXEDDB))
    return dump


def cached_responses(page: Any) -> list[dict[str, Any]]:
    """Every response in Cache Storage, with its body as text."""
    responses: list[dict[str, Any]] = page.evaluate(_DUMP_CACHES)
    return responses


def set_pins(page: Any, key_ids: list[str]) -> None:
    """Replace the key ids the device has pinned, as if it had first seen other keys."""
    page.evaluate(_PUT_PINS, key_ids)
