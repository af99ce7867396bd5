// The pages' one way to the service: the public JSON API, same origin, with the session cookie the
// browser holds (httpOnly: this code never sees it) and the session's CSRF token on every write.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The problem's detail alone: what a page shows a customer. */
    readonly detail: string = message,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
export const setCsrfToken = (token: string | undefined) => {
  csrfToken = token;
};

export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const h: Record<string, string> = { accept: 'application/json', ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) h['x-csrf-token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const detail = typeof json.detail === 'string' ? json.detail : '';
    const title = typeof json.title === 'string' ? json.title : `HTTP ${res.status}`;
    const errors = Array.isArray(json.errors)
      ? (json.errors as { field?: string; reason?: string }[])
          .map((e) => `${e.field}: ${e.reason}`)
          .join('; ')
      : '';
    throw new ApiError(res.status, [title, detail, errors].filter(Boolean).join(': '), detail || title);
  }
  return json as T;
}

export const query = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};
