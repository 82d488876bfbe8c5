// The status form and the offline page: catch a mistyped receipt code on the device,
// before any request; say plainly when a status cannot be checked because there is no
// connection; show how many reports wait on this device. Receipt codes are never stored
// or compared on the device (the queue holds none), so a waiting report is only counted.

import { normalise, isValid } from './receipt.js';
import { t, say } from './page.js';
import { attachControl, showCounts } from './queue.js';

var form = document.getElementById('status-form');

function onSubmit(event) {
  var input = form.elements.code;
  var error = document.getElementById('code-error');
  var code = normalise(input.value);
  if (code && isValid(code)) {
    if (navigator.onLine !== false) return;  // let the form post
    event.preventDefault();
    say(document.getElementById('offline-note'), t('status_offline'), true);
    showCounts().catch(function () {});
    return;
  }
  event.preventDefault();
  input.setAttribute('aria-invalid', 'true');
  say(error, code === null && input.value.replace(/\D/g, '').length !== 16 ? t('code_length') : t('code_typo'), false);
  input.focus();
}

if (form) form.addEventListener('submit', onSubmit);
if (document.getElementById('queue')) {
  attachControl();
  showCounts().catch(function () { /* no IndexedDB here: nothing can be waiting */ });
}
