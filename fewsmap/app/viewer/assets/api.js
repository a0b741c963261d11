// Requests to fewsmap. A failed answer becomes a ServerError carrying the server's own code and
// message, so the page can show it instead of swallowing it.

export class ServerError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The error of a non-2xx answer: JSON {"error": {code, message}}, an OGC exception report, or
// plain text (e.g. a 404 from a route that does not exist).
export async function errorOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      return new ServerError(response.status, body.error.code, body.error.message);
    }
  } catch {
    // not JSON: fall through to XML or text
  }
  const report = text.match(/<ServiceException(?:\s+code="([^"]*)")?[^>]*>([\s\S]*?)<\/ServiceException>/);
  if (report) {
    return new ServerError(response.status, report[1] || null, report[2].trim());
  }
  return new ServerError(response.status, null, text.trim().slice(0, 300) || response.statusText);
}

export async function getJson(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ServerError(0, 'NetworkError', `the server did not answer (${error.message})`);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response.json();
}

// A query string from an object, leaving out empty values.
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') {
      search.set(name, String(value));
    }
  }
  return search.toString();
}

const errorBox = document.getElementById('error');
const errorText = document.getElementById('error-text');
document.getElementById('error-close').addEventListener('click', () => { errorBox.hidden = true; });

// The server's code and message of an error, as the user reads them.
export function errorMessage(error) {
  return error.code ? `${error.code}: ${error.message}` : error.message;
}

// Show an error to the user; `what` says which request failed.
export function showError(error, what) {
  const status = error.status ? ` (HTTP ${error.status})` : '';
  errorText.textContent = `${what} failed${status}: ${errorMessage(error)}`;
  errorBox.hidden = false;
}

export function clearError() {
  errorBox.hidden = true;
  errorText.textContent = '';
}
