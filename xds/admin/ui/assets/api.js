// The admin API client: every read and change of the UI goes through here,
// with the operator's bearer token from sessionStorage (gone when the tab
// closes; never in localStorage or a cookie).

const TOKEN_KEY = 'prism-admin-token';

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

// APIError carries the API's error shape: status, stable code, message.
export class APIError extends Error {
  constructor(status, code, message, requestID, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestID = requestID || '';
    // details are one line per problem, e.g. compiler errors or failed tests.
    this.details = details || [];
  }
  get notFound() { return this.status === 404; }
  get unauthenticated() { return this.status === 401; }
}

// call sends one request to the admin API and returns the decoded JSON.
export async function call(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  const t = token();
  if (t) headers['Authorization'] = 'Bearer ' + t;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  } catch (e) {
    throw new APIError(0, 'UNAVAILABLE', 'the admin API did not answer: ' + e.message);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new APIError(resp.status, e.code || 'HTTP_' + resp.status,
      e.message || `${method} ${path} answered ${resp.status}`, e.request_id || resp.headers.get('x-request-id'), e.details);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const put = (path, body) => call('PUT', path, body);
export const post = (path, body) => call('POST', path, body);

// optional is get that answers null on 404: for the parts of the API that a
// control plane may not have (no audit log, no metrics, an older version).
export async function optional(path) {
  try {
    return await get(path);
  } catch (e) {
    if (e instanceof APIError && e.notFound) return { notAvailable: e.message };
    throw e;
  }
}

export const enc = encodeURIComponent;
