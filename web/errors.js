// Error reports: the page's uncaught errors and unhandled promise rejections become Sentry events,
// sent to the platform's error tracker (Sentry or GlitchTip, the services' SENTRY_DSN).
//
// - Off unless the server has a DSN: nothing is fetched at load. On the first error the page asks
//   GET /api/client/config once; `errorTracking: null` (no DSN) and nothing is ever sent.
// - Sent as a Sentry envelope to POST /api/client/errors, same origin: the CSP's connect-src 'self'
//   allows no other host, so the auth service is the tunnel (it checks the DSN, scrubs again with
//   the services' rules and forwards). No cookies, no Authorization header, no user.
// - Scrubbed here first, with the rules of servicekit/logging.py: JWTs, bearer credentials, stream
//   keys, a URL's password, secret query/fragment parameters, `password=...` pairs; from the
//   message, the stack's URLs and the page URL.
// - At most MAX_REPORTS a page, each distinct error once; errors of other origins' scripts
//   (extensions, "Script error.") are not ours and are skipped.
// Loaded first by app.js, so its listeners are in place before any other module runs.

const CONFIG_URL = "/api/client/config";
const REPORT_URL = "/api/client/errors";
const MAX_REPORTS = 10;
const REDACTED = "[redacted]";
const SECRET_NAME = "(?:passw(?:or)?d|passphrase|secret|token|(?:api|stream|access|private)[_-]?key|signature|credential)";

// [pattern, replacement]: the order matters as in redact_text (servicekit/logging.py)
const RULES = [
  [/\b([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]+@/gi, `$1${REDACTED}@`],
  [/eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}/g, REDACTED],
  [/bearer\s+[\w\-.~+/=]+/gi, `Bearer ${REDACTED}`],
  [/\blive_(?=[\w-]*[A-Z0-9])[A-Za-z0-9_-]{16,}/g, REDACTED],
  [/\b((?:set-)?cookie["']?\s*[:=]\s*)(?!\[redacted\])[^\r\n]+/gi, `$1${REDACTED}`],
  [/([?&#][\w.-]*(?:key|token|secret|pass|sig|code|auth|credential|session)[\w.-]*=)[^&#\s"'<>]+/gi, `$1${REDACTED}`],
  [new RegExp(`(?<![\\w-])(["']?[\\w.-]*?${SECRET_NAME}[\\w.-]*["']?\\s*[:=]\\s*["']?)(?!bearer\\s|\\[redacted\\])[^\\s"'&;,)}\\]]+`, "gi"),
    `$1${REDACTED}`],
];

/** The text with every secret the platform's redaction rules know replaced by [redacted]. */
export function scrub(text) {
  let out = String(text ?? "");
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}

/** Stack lines (V8: "at fn (url:line:col)", Firefox/Safari: "fn@url:line:col") as Sentry frames, oldest first. */
export function frames(stack) {
  const out = [];
  for (const line of String(stack || "").split("\n")) {
    const m = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/.exec(line) || /^(.*?)@(.+?):(\d+):(\d+)$/.exec(line);
    if (m) {
      out.push({ function: m[1] || "?", abs_path: scrub(m[2]), filename: scrub(m[2]).replace(/^[a-z]+:\/\/[^/]+/, ""),
        lineno: Number(m[3]), colno: Number(m[4]), in_app: true });
    }
  }
  return out.reverse().slice(-50);
}

function eventId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A Sentry event for `error` (anything thrown or rejected); `kind` is "error" or "unhandledrejection". */
export function buildEvent(error, { kind = "error", url = "", userAgent = "", release = null, environment = null } = {}) {
  const isError = error instanceof Error || (error && typeof error === "object" && "message" in error);
  let value;
  try {
    value = isError ? String(error.message) : typeof error === "string" ? error : JSON.stringify(error);
  } catch {
    value = String(error);
  }
  const exception = {
    type: (isError && error.name) || (kind === "unhandledrejection" ? "UnhandledRejection" : "Error"),
    value: scrub(value ?? String(error)).slice(0, 2000),
    mechanism: { type: kind === "unhandledrejection" ? "onunhandledrejection" : "onerror", handled: false },
  };
  const stack = isError ? frames(error.stack) : [];
  if (stack.length) exception.stacktrace = { frames: stack };
  const event = {
    event_id: eventId(),
    timestamp: Date.now() / 1000,
    platform: "javascript",
    level: "error",
    logger: "web",
    exception: { values: [exception] },
    request: { url: scrub(url), headers: { "User-Agent": userAgent } },
    tags: { service: "web" },
  };
  if (release) event.release = release;
  if (environment) event.environment = environment;
  return event;
}

/** The envelope (https://develop.sentry.dev/sdk/data-model/envelopes/) carrying one event. */
export function envelope(dsn, event) {
  const payload = JSON.stringify(event);
  const header = { event_id: event.event_id, dsn, sent_at: new Date().toISOString() };
  const item = { type: "event", content_type: "application/json", length: new TextEncoder().encode(payload).length };
  return `${JSON.stringify(header)}\n${JSON.stringify(item)}\n${payload}\n`;
}

/**
 * Listen for uncaught errors and unhandled rejections on `target` (the window) and report them.
 * `fetch`, `location` and `userAgent` are the page's (replaceable for tests). Returns {reports}:
 * a promise per report sent (for tests), and `ready()`: waits for every report under way.
 */
export function install(target, { fetch, location, userAgent = "" }) {
  let config = null; // the promise of /api/client/config's errorTracking, asked once
  const seen = new Set();
  const pending = [];
  let sent = 0;

  function settings() {
    config ??= fetch(CONFIG_URL, { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : null))
      .then((body) => (body && body.errorTracking && body.errorTracking.dsn ? body.errorTracking : null))
      .catch(() => null);
    return config;
  }

  function report(error, kind) {
    if (sent >= MAX_REPORTS) return;
    const signature = `${kind}:${error && error.message}:${error && String(error.stack).slice(0, 300)}`;
    if (seen.has(signature)) return;
    seen.add(signature);
    sent += 1;
    const job = settings().then((tracking) => {
      if (!tracking) return false;
      const event = buildEvent(error, { kind, url: location.href, userAgent, release: tracking.release,
        environment: tracking.environment });
      return fetch(REPORT_URL, { method: "POST", body: envelope(tracking.dsn, event), credentials: "omit",
        keepalive: true, headers: { "Content-Type": "text/plain;charset=UTF-8" } }).then((r) => r.ok);
    }).catch(() => false);
    pending.push(job);
  }

  target.addEventListener("error", (e) => {
    // another origin's script (an extension, an ad): the browser hides it as "Script error."
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e.filename || "") && !e.filename.startsWith(`${location.origin}/`)) return;
    if (!e.error && (!e.message || e.message === "Script error.")) return;
    report(e.error || { name: "Error", message: e.message, stack: `at ${e.filename}:${e.lineno}:${e.colno}` }, "error");
  });
  target.addEventListener("unhandledrejection", (e) => report(e.reason, "unhandledrejection"));
  return { ready: () => Promise.all(pending) };
}

if (typeof window !== "undefined" && typeof window.addEventListener === "function") {
  install(window, { fetch: (...args) => window.fetch(...args), location: window.location,
    userAgent: navigator.userAgent });
}
