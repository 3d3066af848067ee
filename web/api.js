// Fetch wrapper for the platform's API (same origin, through the gateway).
//
// - JSON in and out; `Authorization: Bearer <access token>` when a session exists.
// - A 401 on an authenticated call triggers one refresh with the refresh token, then one retry.
// - Errors are RFC 9457 problem+json; they become an ApiError with `status`, `title`, `detail`,
//   the raw `errors` list and `fieldErrors` ({field: message}) built from `errors[].field`.
//
// The token source is plugged in by auth.js (configureAuth), so this module has no storage of its own.

import { t } from "./i18n.js";

const auth = {
  /** @returns {Promise<string|null>} */
  getAccessToken: async () => null,
  /** @param {string} _staleToken @returns {Promise<boolean>} true when a fresh token is available */
  refresh: async (_staleToken) => false,
};

export function configureAuth(handlers) {
  Object.assign(auth, handlers);
}

// the words for a problem the server sent no detail for (or no answer at all), in the page's language
const DEFAULT_DETAILS = () => ({
  0: t("api.unreachable"),
  401: t("api.401"),
  403: t("api.403"),
  404: t("api.404"),
  413: t("api.413"),
  415: t("api.415"),
  429: t("api.429"),
  500: t("api.500"),
  502: t("api.unavailable"),
  503: t("api.unavailable"),
  504: t("api.504"),
});

export class ApiError extends Error {
  constructor({ status, title = "", detail = "", type = "about:blank", errors = [], retryAfter = null }) {
    const fallback = DEFAULT_DETAILS();
    super(detail || title || fallback[status] || t("api.failed", { status }));
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = detail || fallback[status] || fallback[500];
    this.type = type;
    this.errors = Array.isArray(errors) ? errors.filter((e) => e && typeof e === "object") : [];
    /** @type {Record<string, string>} first message per field */
    this.fieldErrors = {};
    for (const e of this.errors) {
      if (typeof e.field === "string" && e.field && !(e.field in this.fieldErrors)) {
        this.fieldErrors[e.field] = typeof e.message === "string" && e.message ? e.message : t("api.invalidValue");
      }
    }
    /** seconds, from Retry-After, when the server sent one */
    this.retryAfter = retryAfter;
  }

  /** The error entry (with its `type`) of one field, if any. */
  fieldError(field) {
    return this.errors.find((e) => e.field === field) || null;
  }
}

function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

async function readBody(res) {
  if (res.status === 204 || res.status === 205) return null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  try {
    await res.text();
  } catch {
    /* ignore */
  }
  return null;
}

/**
 * @param {string} path e.g. "/api/auth/user"
 * @param {{method?: string, json?: any, formData?: FormData, auth?: boolean, signal?: AbortSignal,
 *          headers?: Record<string,string>}} [options]
 */
export async function request(path, options = {}) {
  const { method = "GET", json, formData, auth: withAuth = true, signal, headers = {} } = options;

  const send = async () => {
    const h = new Headers(headers);
    h.set("Accept", "application/json, application/problem+json");
    let body;
    if (json !== undefined) {
      h.set("Content-Type", "application/json");
      body = JSON.stringify(json);
    } else if (formData) {
      body = formData; // the browser sets the multipart boundary
    }
    const token = withAuth ? await auth.getAccessToken() : null;
    if (token) h.set("Authorization", `Bearer ${token}`);
    try {
      const res = await fetch(path, { method, headers: h, body, signal, credentials: "same-origin", cache: "no-store" });
      return { res, token };
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError({ status: 0, title: t("api.networkError") });
    }
  };

  let { res, token } = await send();
  if (res.status === 401 && withAuth && token) {
    await readBody(res);
    if (await auth.refresh(token)) ({ res } = await send());
  }

  const data = await readBody(res);
  if (res.ok) return data;
  const problem = data && typeof data === "object" ? data : {};
  throw new ApiError({
    status: res.status,
    title: typeof problem.title === "string" ? problem.title : res.statusText,
    detail: typeof problem.detail === "string" ? problem.detail : "",
    type: typeof problem.type === "string" ? problem.type : "about:blank",
    errors: problem.errors,
    retryAfter: parseRetryAfter(res.headers.get("Retry-After")),
  });
}

export const api = {
  get: (path, options) => request(path, { ...options, method: "GET" }),
  post: (path, json, options) => request(path, { ...options, method: "POST", json }),
  put: (path, json, options) => request(path, { ...options, method: "PUT", json }),
  patch: (path, json, options) => request(path, { ...options, method: "PATCH", json }),
  del: (path, options) => request(path, { ...options, method: "DELETE" }),
  upload: (path, formData, options) => request(path, { ...options, method: "POST", formData }),
};
