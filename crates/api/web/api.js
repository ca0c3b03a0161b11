// HTTP: the JSON envelope {"status","msg","data","error"} and the session token.

const TOKEN_KEY = 'chat.token';

/** A failed request; `message` is safe to show (the envelope's `error`, or our own words). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

export const session = {
  get token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set token(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: the session lasts as long as the page
    }
  },
};

// Called with the ApiError when an authenticated request gets 401 (the session is gone).
let unauthorizedHandler = () => {};
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

async function request(method, path, { body, auth = true, timeoutMs = 15000 } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = session.token;
  if (auth) {
    if (!token) throw new ApiError(401, 'Please log in.');
    headers.Authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'Cannot reach the server. Check your connection and try again.');
  }
  let envelope = null;
  try {
    envelope = await res.json();
  } catch {
    // not JSON (a proxy error page, say): fall through to a generic message
  }
  if (res.ok && envelope && typeof envelope === 'object') return envelope.data;
  const message =
    (envelope && typeof envelope.error === 'string' && envelope.error) ||
    (res.status >= 500 ? 'The server could not do that right now. Try again.' : `Request failed (${res.status}).`);
  const err = new ApiError(res.status, message);
  if (auth && res.status === 401) unauthorizedHandler(err);
  throw err;
}

export const api = {
  register: (nick_name, user_name, password) =>
    request('POST', '/user/register', { body: { nick_name, user_name, password }, auth: false }),
  login: (user_name, password) => request('POST', '/user/login', { body: { user_name, password }, auth: false }),
  logout: () => request('POST', '/user/logout', { timeoutMs: 5000 }),
  me: () => request('GET', '/user/me'),
  lookup: (user_name) => request('GET', `/user/lookup?user_name=${encodeURIComponent(user_name)}`),
  conversations: () => request('GET', '/conversations'),
  createGroup: (name, members) => request('POST', '/groups', { body: { name, members } }),
  group: (id) => request('GET', `/groups/${id}`),
  renameGroup: (id, name) => request('PATCH', `/groups/${id}`, { body: { name } }),
  addMembers: (id, userIds) => request('POST', `/groups/${id}/members`, { body: { user_ids: userIds } }),
  /** Removes a member; my own id leaves the group (answers null). */
  removeMember: (id, userId) => request('DELETE', `/groups/${id}/members/${userId}`),
  setRole: (id, userId, role) => request('PUT', `/groups/${id}/members/${userId}/role`, { body: { role } }),
  handOver: (id, userId) => request('POST', `/groups/${id}/owner`, { body: { user_id: userId } }),
};
