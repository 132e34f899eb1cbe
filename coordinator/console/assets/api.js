// The coordinator's API as the console calls it: the session cookie
// (fabu_session, HttpOnly) authenticates, and every request that changes
// something carries the session's CSRF token in X-CSRF-Token
// (docs/console.md). Errors come back as ApiError with the server's
// message, which the pages show as they are.

let csrf = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) { csrf = token || ''; }

export async function api(method, path, body, options = {}) {
  const headers = {'Accept': 'application/json'};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unavailable', `${method} ${path}: ${e.message}`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    const error = data && data.error ? data.error : {code: String(response.status), message: text};
    const err = new ApiError(response.status, error.code, error.message || `HTTP ${response.status}`);
    if (response.status === 401 && !options.quiet401) {
      window.dispatchEvent(new CustomEvent('fabu:signed-out'));
    }
    throw err;
  }
  return data;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body === undefined ? {} : body, options);

export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const text = s.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;
