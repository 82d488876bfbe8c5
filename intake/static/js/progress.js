// How far the upload of a report's attachments has gone, on the receipt screen: a
// <progress> bar with the same in words (bytes sent, of how many, and about how long is
// left), for screen readers and for people who do not read a bar. Loaded when an upload
// first reports progress.
import { pageData, show } from './page.js';

var MB = 1024 * 1024;
var watched = null; // {id, since, sentThen, tenth}
var t = function (key) { return key; };

// The words to use: media.js's, which it fetches in the page's language.
export function useWords(fn) {
  t = fn;
}

function number(value, digits) {
  try {
    return new Intl.NumberFormat(pageData().language, { maximumFractionDigits: digits }).format(value);
  } catch (e) {
    return value.toFixed(digits);
  }
}

export function formatSize(bytes) {
  if (bytes >= MB) return t('size_mb', { num: number(bytes / MB, 1) });
  return t('size_kb', { num: number(Math.max(1, Math.round(bytes / 1024)), 0) });
}

// Time left from the speed seen since this page started watching this upload, in whole
// minutes (plural-free wording, like the queue's counts).
function timeLeft(sent, total) {
  var now = Date.now();
  var seconds = (now - watched.since) / 1000;
  var speed = (sent - watched.sentThen) / seconds;
  if (!(seconds >= 3 && speed > 0)) return '';
  var left = (total - sent) / speed;
  return left < 60 ? t('upload_under_a_minute') : t('upload_minutes_left', { num: Math.round(left / 60) });
}

// The receipt screen of report `id` follows its upload; any other report's is ignored.
export function watch(id) {
  watched = id ? { id: id, since: Date.now(), sentThen: null, tenth: -1 } : null;
  show(document.getElementById('upload'), false);
}

export function update(id, sent, total) {
  if (!watched || watched.id !== id || !total) return;
  if (watched.sentThen === null) {
    watched.sentThen = sent;
    watched.since = Date.now();
  }
  var bar = document.getElementById('upload-bar');
  bar.max = total;
  bar.value = sent;
  bar.textContent = Math.floor((100 * sent) / total) + '%';
  show(document.getElementById('upload'), sent < total);
  // The words change every tenth of the way, not with every chunk, so that a screen
  // reader reading them is not interrupted every few seconds.
  var tenth = Math.floor((10 * sent) / total);
  if (tenth === watched.tenth) return;
  watched.tenth = tenth;
  var words = t('upload_sent', { sent: formatSize(sent), total: formatSize(total) });
  var left = sent < total ? timeLeft(sent, total) : '';
  document.getElementById('upload-text').textContent = left ? words + ' ' + left : words;
}
