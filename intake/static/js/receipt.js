// Receipt codes (docs/formats.md section 4): 15 random digits and a Damm check digit, so
// that a mistyped digit or two swapped neighbours are caught on the device, before any
// request. Digits only, because they can be typed on any keypad and read aloud.

// Damm's weakly totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004), the
// same table as intake/receipts.py.
var DAMM = [
  '0317598642', '7092154863', '4206871359', '1750983426', '6123045978',
  '3674209581', '5869720134', '8945362017', '9438617205', '2581436790'
];
var CODE_DIGITS = 16;
// The separators intake/receipts.py ignores: space, tab, hyphen-minus, full stop,
// no-break space and narrow no-break space (what phones insert when grouping digits).
var SEPARATORS = /[ \t\-.\u00a0\u202f]/g;
var DIGIT = /^\p{Nd}$/u;

// The Damm interim digit over a string of ASCII digits: the check digit to append, or
// 0 when the string already ends in a correct one.
export function damm(digits) {
  var interim = 0;
  for (var i = 0; i < digits.length; i++) interim = +DAMM[interim][digits.charCodeAt(i) - 48];
  return interim;
}

export function newCode() {
  var digits = '';
  while (digits.length < CODE_DIGITS - 1) {
    var bytes = crypto.getRandomValues(new Uint8Array(CODE_DIGITS));
    for (var i = 0; i < bytes.length && digits.length < CODE_DIGITS - 1; i++) {
      // 250..255 are rejected so that each of the ten digits is exactly equally likely.
      if (bytes[i] < 250) digits += bytes[i] % 10;
    }
  }
  return digits + damm(digits);
}

// The value of a Unicode decimal digit. Unicode guarantees that decimal digits come in
// runs of ten from 0 to 9 (some runs touch, as in the mathematical digits), so the value
// is the distance from the start of the run, modulo ten; no table to keep up to date.
function digitValue(ch) {
  var cp = ch.codePointAt(0);
  var start = cp;
  while (DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}

// The 16 ASCII digits of a code as typed in any script, or null. It does not check the
// check digit: isValid does.
export function normalise(input) {
  if (typeof input !== 'string' || input.length > 64) return null;
  var out = '';
  var chars = Array.from(input.replace(SEPARATORS, ''));
  for (var i = 0; i < chars.length; i++) {
    if (!DIGIT.test(chars[i])) return null;
    out += digitValue(chars[i]);
  }
  return out.length === CODE_DIGITS ? out : null;
}

export function isValid(input) {
  var code = normalise(input);
  return code !== null && damm(code) === 0;
}

// "1234 5678 9012 3456", or null for text that is not 16 digits.
export function format(input) {
  var code = normalise(input);
  return code === null ? null : code.match(/\d{4}/g).join(' ');
}
