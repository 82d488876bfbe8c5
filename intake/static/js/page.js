// What the server put in the page for the scripts: keys, strings and limits, read from a
// JSON data block (not executed, so the CSP's no-inline-script rule holds).

var cached = null;

export function pageData() {
  if (!cached) cached = JSON.parse(document.getElementById('page-data').textContent);
  return cached;
}

export function t(key) {
  return pageData().strings[key] || key;
}

// Shows a message in a live region and moves focus there, so screen readers announce it.
export function say(element, text, focus) {
  element.textContent = text;
  element.classList.remove('hidden');
  if (focus) element.focus();
}
