// The chat WebSocket (API.md, "WebSocket: GET /ws"): one connection per page, joined to one room.
//
// - A server frame holds one or more events separated by "\n": split, parse each line.
// - `seq` grows per room but is not consecutive: remember the highest seen and resume with
//   `since` after a reconnect; `chat:history` with `recovered: false` means "reload the history".
// - Reconnects back off (1 s doubling to 15 s, with jitter); a fresh access token is sent each time.
// - `send` resolves on the `chat:ack` with its nonce and rejects on the `chat:error` with it, except
//   `unknown` (maybe stored) and `unavailable` (not stored): those are resent with the same nonce
//   after `retryAfter`, so a message is stored at most once and the writer does not retype it.

import * as auth from "./auth.js";
import { t } from "./i18n.js";

const PING_MS = 25_000;
const ACK_TIMEOUT_MS = 10_000;
const TYPING_EVERY_MS = 3_000;
const RESEND_CODES = new Set(["unknown", "unavailable"]);
const MAX_RESENDS = 3;

export class ChatError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "ChatError";
    this.code = code;
  }
}

// The edges' published address when the site names one (the gateway writes CHAT_WS_URL into the
// page; clients then reach an edge with no HTTP proxy in between), else /ws on this site.
export function chatUrl() {
  const published = document.querySelector('meta[name="chat-url"]')?.content;
  if (published) return published;
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

function nonce() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

/** The highest `seq` carried by one event (top level, its message, or its history). */
function seqOf(event) {
  let seq = typeof event.seq === "number" ? event.seq : 0;
  if (event.message && typeof event.message.seq === "number") seq = Math.max(seq, event.message.seq);
  for (const m of event.messages || []) if (m && typeof m.seq === "number") seq = Math.max(seq, m.seq);
  return seq;
}

export class ChatConnection {
  /**
   * @param {{channelId: string, onEvent: (event: object) => void,
   *          onState?: (state: "connecting"|"open"|"reconnecting"|"closed") => void}} options
   */
  constructor({ channelId, onEvent, onState = () => {} }) {
    this.channelId = channelId;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastSeq = null;
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    this.pending = new Map(); // nonce -> {resolve, reject, timer}
    this.lastTyping = 0;
    this.timer = null;
    this.pinger = null;
    this.authenticated = false;
  }

  start() {
    this.stopped = false;
    this.open();
    return this;
  }

  async open() {
    if (this.stopped) return;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    let token = null;
    try {
      token = await auth.accessToken();
    } catch {
      token = null; // read-only until the next reconnect
    }
    if (this.stopped) return;
    const url = chatUrl();
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.authenticated = Boolean(token);
      if (token) ws.send(JSON.stringify({ type: "auth", token }));
      const join = { type: "chat:join", channelId: this.channelId };
      if (this.lastSeq != null) join.since = this.lastSeq;
      ws.send(JSON.stringify(join));
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.raw({ type: "ping" }), PING_MS);
      this.onState("open");
    });
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      for (const line of e.data.split("\n")) {
        if (!line.trim()) continue;
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          continue;
        }
        if (event && typeof event.type === "string") this.dispatch(event);
      }
    });
    ws.addEventListener("close", () => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new ChatError("disconnected", t("live.dropped")));
      }
      this.pending.clear();
      if (!this.stopped) this.retry();
    });
  }

  retry() {
    this.attempt += 1;
    const base = Math.min(15_000, 1000 * 2 ** Math.min(this.attempt - 1, 4));
    this.onState("reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), base / 2 + Math.random() * base / 2);
  }

  dispatch(event) {
    if (event.type === "chat:history" && event.recovered === false) this.lastSeq = null;
    const seq = seqOf(event);
    if (seq && (this.lastSeq == null || seq > this.lastSeq)) this.lastSeq = seq;
    if (event.type === "chat:ack" || (event.type === "chat:error" && event.nonce)) {
      const p = this.pending.get(event.nonce);
      if (p && event.type === "chat:error" && RESEND_CODES.has(event.code) && p.resends < MAX_RESENDS) {
        p.resends += 1;
        const wait = Math.min(5, Number(event.retryAfter) || 1) * 1000;
        setTimeout(() => this.raw({ type: "chat:send", content: p.content, nonce: event.nonce }), wait);
      } else if (p) {
        this.pending.delete(event.nonce);
        clearTimeout(p.timer);
        if (event.type === "chat:ack") p.resolve(event);
        else p.reject(new ChatError(event.code, event.message));
      }
    }
    try {
      this.onEvent(event);
    } catch (err) {
      console.error(err);
    }
  }

  raw(event) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(event));
      return true;
    }
    return false;
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  /** @returns {Promise<{nonce: string, id: string, seq: number}>} */
  send(content) {
    const id = nonce();
    return new Promise((resolve, reject) => {
      if (!this.raw({ type: "chat:send", content, nonce: id })) {
        reject(new ChatError("disconnected", t("live.notConnected")));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChatError("timeout", t("live.notConfirmed")));
      }, ACK_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer, content, resends: 0 });
    });
  }

  typing() {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    this.raw({ type: "chat:typing" });
  }

  /** Reconnect now (e.g. after logging in, to send the token). */
  restart() {
    const ws = this.ws;
    this.ws = null;
    this.attempt = 0;
    if (ws) ws.close(1000);
    clearTimeout(this.timer);
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "chat:leave" }));
      ws.close(1000);
    }
    this.onState("closed");
  }
}
