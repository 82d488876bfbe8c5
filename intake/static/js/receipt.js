// Receipt codes (SECURITY.md, Formats 4): 15 random digits and a Damm check digit, so
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

// The zero of every run of ten Unicode decimal digits (category Nd), from the Unicode
// 14.0 data of the server's Python, so that the device accepts exactly what the server
// does. Regenerate with: python3 -c "import unicodedata as u; print([hex(c) for c in
// range(0x110000) if u.category(chr(c)) == 'Nd' and u.digit(chr(c)) == 0])"
// A table rather than /\p{Nd}/u, which is ES2018 and would stop the module from loading
// at all in an older browser.
var ZEROS = [
  0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
  0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
  0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0,
  0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0,
  0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0,
  0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0
];

// The value of a decimal digit in any script, or -1.
function digitValue(ch) {
  var cp = ch.codePointAt(0);
  for (var i = 0; i < ZEROS.length; i++) {
    if (cp >= ZEROS[i] && cp < ZEROS[i] + 10) return cp - ZEROS[i];
  }
  return -1;
}

// The 16 ASCII digits of a code as typed in any script, or null. It does not check the
// check digit: isValid does.
export function normalise(input) {
  if (typeof input !== 'string') return null;
  // 64 code points at most, as in intake/receipts.py; Array.from counts code points.
  if (Array.from(input).length > 64) return null;
  var out = '';
  var chars = Array.from(input.replace(SEPARATORS, ''));
  for (var i = 0; i < chars.length; i++) {
    var value = digitValue(chars[i]);
    if (value < 0) return null;
    out += value;
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
