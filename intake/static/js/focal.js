// The focal point's page: enrol this tablet once, say whether it is enrolled, and save the
// waiting reports to a file for a tablet that can never get online (SECURITY.md, Formats 8
// and 9). The tablet's signing key is made here, non-extractable, and never leaves it.

import { toBase64url } from './bytes.js';
import { jsonHeaders, pageData, t, say, show } from './page.js';
import * as queue from './queue.js';

var $ = function (id) { return document.getElementById(id); };
var form = $('enrol-form');

function showIdentity(identity) {
  say($('focal-state'), identity ? t('focal_enrolled', { name: identity.name })
    : t('focal_not_enrolled'), false);
  show($('enrol-section'), !identity);
}

async function enrol(code) {
  var pair = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  var publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  var response = await fetch(pageData().enrolUrl, {
    method: 'POST', headers: jsonHeaders(),
    body: JSON.stringify({ enrolment_code: code, public_key: toBase64url(publicKey) }),
    credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer'
  });
  var answer = {};
  try { answer = await response.json(); } catch (e) { answer = {}; }
  if (response.status !== 201) return { error: answer.message || t('enrol_failed') };
  var identity = { id: answer.focal_point, name: answer.name, privateKey: pair.privateKey };
  await queue.setFocalIdentity(identity);
  // The queue must survive until there is signal again: ask the browser not to evict it.
  if (navigator.storage && navigator.storage.persist) {
    await navigator.storage.persist().catch(function () { return false; });
  }
  return { identity: identity };
}

function onEnrol(event) {
  event.preventDefault();
  var input = form.elements.enrolment_code;
  var status = $('enrol-status');
  var code = input.value.trim();
  if (!code) {
    say(status, t('enrol_code_needed'), true);
    return;
  }
  var button = $('enrol-button');
  button.disabled = true;
  enrol(code).then(function (result) {
    if (result.error) return say(status, result.error, true);
    form.reset();
    show(status, false);
    showIdentity(result.identity);
    $('focal-state').focus();
  }, function () {
    say(status, t('enrol_network'), true);
  }).then(function () { button.disabled = false; });
}

function onExport() {
  var status = $('export-status');
  queue.exportFile().then(function (n) {
    say(status, n ? t('export_done', { num: n }) : t('export_none'), true);
  }, function () {
    say(status, t('export_failed'), true);
  });
}

if (form && window.crypto && crypto.subtle && window.indexedDB) {
  form.addEventListener('submit', onEnrol);
  $('export').addEventListener('click', onExport);
  queue.focalIdentity().then(showIdentity, function () {
    say($('focal-state'), t('focal_no_storage'), false);
    show($('enrol-section'), false);
  });
  queue.attachControl();
  queue.showCounts().catch(function () {});
}
