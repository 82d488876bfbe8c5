// The status form: catch a mistyped receipt code on the device, before any request.

import { normalise, isValid } from './receipt.js';
import { t, say } from './page.js';

var form = document.getElementById('status-form');

function onSubmit(event) {
  var input = form.elements.code;
  var error = document.getElementById('code-error');
  var code = normalise(input.value);
  if (code && isValid(code)) return;  // let the form post
  event.preventDefault();
  input.setAttribute('aria-invalid', 'true');
  say(error, code === null && input.value.replace(/\D/g, '').length !== 16 ? t('code_length') : t('code_typo'), false);
  input.focus();
}

if (form) form.addEventListener('submit', onSubmit);
