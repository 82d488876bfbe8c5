// What every page shares: the data the server put in the page (keys, strings, limits, read
// from a JSON data block that is not executed, so the CSP's no-inline-script rule holds),
// quick exit, and the service worker that keeps the pages for offline use.
// It is loaded on every page, so it imports nothing: no page pays for a module it does
// not use, and the report page stays within its request budget.

var cached = null;
var EXIT_KEYS_WITHIN = 1500; // ms between the two presses of Esc
var lastEscape = 0;

export function pageData() {
  if (!cached) cached = JSON.parse(document.getElementById('page-data').textContent);
  return cached;
}

// A translated string; %(name)s and %(name)d are replaced from `params`, as in the catalogue.
export function t(key, params) {
  var text = pageData().strings[key] || key;
  if (!params) return text;
  return text.replace(/%\((\w+)\)[sd]/g, function (all, name) {
    return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : all;
  });
}

// Headers of every JSON request to the instance. Accept-Language names the page's language,
// not the browser's: a refusal that the server explains is shown on this page, in the
// language the person chose.
export function jsonHeaders() {
  return { 'Content-Type': 'application/json', 'Accept-Language': pageData().language };
}

// Shows a message in a live region and moves focus there, so screen readers announce it.
export function say(element, text, focus) {
  element.textContent = text;
  element.classList.remove('hidden');
  if (focus) element.focus();
}

export function show(element, visible) {
  if (element) element.classList.toggle('hidden', !visible);
}

// Quick exit: empty every form and the receipt code first, hide the page, then replace
// it with the neutral page. location.replace() takes the current page out of the history,
// so Back does not return to it; earlier entries stay (the about page says so).
function quickExit(event) {
  if (event) event.preventDefault();
  var i;
  for (i = 0; i < document.forms.length; i++) document.forms[i].reset();
  var codes = document.querySelectorAll('#receipt-code, .code');
  for (i = 0; i < codes.length; i++) codes[i].textContent = '';
  if (window.speechSynthesis) speechSynthesis.cancel();
  // Forget the language picked (intake/security.py): here, because offline the neutral
  // page comes from the service worker's copy and the server cannot do it.
  document.cookie = 'lang=; Max-Age=0; Path=/; SameSite=Lax' +
    (location.protocol === 'https:' ? '; Secure' : '');
  document.documentElement.classList.add('leaving');
  var target = '/n';
  try { target = pageData().exitUrl || target; } catch (e) { /* no page data: keep /n */ }
  location.replace(target);
}

// The receipt code read aloud, for people who cannot read it well. Only with a voice of
// the page's language that the device itself provides (localService): nothing goes over
// the network, and no voice reads the digits in a language the person may not know.
export function spokenText(code) {
  // One digit at a time, with a pause between the groups of four.
  var digits = String(code).replace(/[^0-9]/g, '');
  var groups = [];
  for (var i = 0; i < digits.length; i += 4) groups.push(digits.slice(i, i + 4).split('').join(' '));
  return groups.join('. ');
}

export function localVoice(voices, lang) {
  for (var i = 0; i < voices.length; i++) {
    var tag = String(voices[i].lang || '').toLowerCase().split(/[-_]/)[0];
    if (voices[i].localService && tag === lang) return voices[i];
  }
  return null;
}

function setUpSpeech() {
  var button = document.getElementById('speak-code');
  if (!button || !window.speechSynthesis || !window.SpeechSynthesisUtterance) return;
  var lang = pageData().language;
  function offer() { show(button, !!localVoice(speechSynthesis.getVoices(), lang)); }
  offer();
  // Voices arrive late on some browsers.
  if (speechSynthesis.addEventListener) speechSynthesis.addEventListener('voiceschanged', offer);
  button.addEventListener('click', function () {
    var voice = localVoice(speechSynthesis.getVoices(), lang);
    var code = document.getElementById('receipt-code').textContent;
    if (!voice || !code.trim()) return;
    speechSynthesis.cancel();
    var utterance = new SpeechSynthesisUtterance(spokenText(code));
    utterance.voice = voice;
    utterance.lang = voice.lang;
    utterance.rate = 0.8;
    speechSynthesis.speak(utterance);
  });
}

function onKey(event) {
  if (event.key !== 'Escape' && event.key !== 'Esc') return;
  var now = Date.now();
  if (now - lastEscape <= EXIT_KEYS_WITHIN) {
    lastEscape = 0;
    quickExit(event);
  } else {
    lastEscape = now;
  }
}

// Registered after the page has loaded, so the worker and what it keeps never slow the
// first visit. It serves the pages when there is no network and sends the queue.
function registerWorker() {
  var url;
  try { url = pageData().swUrl; } catch (e) { return; }
  if (!url || !('serviceWorker' in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register(url, { scope: '/' }).catch(function () {
    // No worker (a private window, say): the pages still work online.
  });
}

var exit = document.getElementById('quick-exit');
if (exit) exit.addEventListener('click', quickExit);
document.addEventListener('keydown', onKey);
setUpSpeech();
if (document.readyState === 'complete') registerWorker();
else window.addEventListener('load', registerWorker);
