// Recording a voice note in the page: MediaRecorder at a low bit rate, for speech on a
// 2G link (16 kbit/s of Opus is about 120 KB a minute). The recording lives in memory as
// a Blob until it is sealed with the report; it is never stored on the device.

var TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'];
var BITS_PER_SECOND = 16000;
export var MAX_SECONDS = 600; // ten minutes is more than a voice report needs, and ~1.2 MB

export function supported() {
  return !!(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function typeFor() {
  for (var i = 0; i < TYPES.length; i++) {
    if (MediaRecorder.isTypeSupported(TYPES[i])) return TYPES[i];
  }
  return '';
}

// Starts recording; onTick(seconds) every second, onDone(blob) when stopped (by stop(),
// by the time limit, or because the microphone went away). Rejects when the microphone
// cannot be used (refused, missing, or forbidden by the page's Permissions-Policy).
export async function record(onTick, onDone) {
  var stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true }
  });
  var type = typeFor();
  var options = { audioBitsPerSecond: BITS_PER_SECOND };
  if (type) options.mimeType = type;
  var recorder = new MediaRecorder(stream, options);
  var parts = [];
  var seconds = 0;
  var timer = setInterval(function () {
    seconds += 1;
    onTick(seconds);
    if (seconds >= MAX_SECONDS) stop();
  }, 1000);
  recorder.ondataavailable = function (event) {
    if (event.data && event.data.size) parts.push(event.data);
  };
  recorder.onstop = function () {
    clearInterval(timer);
    stream.getTracks().forEach(function (track) { track.stop(); });
    onDone(new Blob(parts, { type: recorder.mimeType || type || 'audio/webm' }));
  };
  function stop() {
    if (recorder.state !== 'inactive') recorder.stop();
  }
  recorder.start();
  return { stop: stop };
}

export function extension(type) {
  if (/ogg/.test(type)) return 'ogg';
  if (/mp4/.test(type)) return 'm4a';
  return 'webm';
}
