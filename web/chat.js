// The chat panel of the stream page: history, live messages, timestamps and badges, typing
// indicator, online users, inline moderator actions, reporting, and the composer.
//
// Messages are appended inside a fixed-height scroll box, so nothing outside it moves when they
// arrive; the box follows new messages only while the reader is at the bottom.

import { api } from "./api.js";
import * as auth from "./auth.js";
import { ChatConnection } from "./live.js";
import { formatNumber, t } from "./i18n.js";
import { avatar, chatBadge, clockTime, confirmDialog, h, uid } from "./ui.js";

const MAX_MESSAGES = 250;
const TYPING_SHOWN_MS = 4000;
const NEAR_BOTTOM_PX = 48;

const ERROR_WORDS = () => ({
  unauthorized: t("chat.err.unauthorized"),
  banned: t("chat.err.banned"),
  timed_out: t("chat.err.timedOut"),
  rate_limited: t("chat.err.rateLimited"),
  slow_mode: t("chat.err.slowMode"),
  followers_only: t("chat.err.followersOnly"),
  subscribers_only: t("chat.error.subscribersOnly"),
  filtered: t("chat.err.filtered"),
  too_long: t("chat.err.tooLong"),
  invalid: t("chat.err.invalid"),
  unknown: t("chat.err.unknown"),
  unavailable: t("chat.err.unavailable"),
});

const BADGE_WORDS = () => ({ owner: t("chat.badge.creator"), broadcaster: t("chat.badge.creator"), moderator: t("chat.badge.mod"),
  mod: t("chat.badge.mod"), staff: t("chat.badge.staff") });

function hue(text) {
  let n = 0;
  for (const c of text || "") n = (n * 31 + c.charCodeAt(0)) % 360;
  return n;
}

/**
 * @param {{channel: object, onViewers?: (count: number, streamId: string) => void,
 *          onStatus?: (status: string, streamId: string) => void}} options
 */
export function createChat({ channel, onViewers = () => {}, onStatus = () => {} }) {
  const me = auth.isLoggedIn() ? auth.currentUser() : null;
  const canModerate = Boolean(channel.canModerate);
  const isOwner = Boolean(me && me.id === channel.ownerId);

  const log = h("ol", { class: "chat-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": t("chat.messages"), tabindex: "0" });
  const empty = h("p", { class: "chat-empty muted" }, t("chat.connecting"));
  const jump = h("button", { type: "button", class: "btn btn-small chat-jump", hidden: true }, t("chat.newMessages"));
  const typingLine = h("p", { class: "chat-typing", "aria-live": "off" });
  const state = h("p", { class: "chat-state", role: "status", "aria-live": "polite" });
  const usersId = uid("chat-users");
  const usersButton = h("button", { type: "button", class: "btn btn-ghost btn-small chat-users-btn", "aria-expanded": "false", "aria-controls": usersId },
    t("chat.inChat", { n: formatNumber(0) }));
  const usersList = h("ul", { class: "chat-users", id: usersId, role: "list", hidden: true, "aria-label": t("chat.people") });
  const closeDrawer = h("button", { type: "button", class: "btn btn-ghost btn-small chat-close", "aria-label": t("chat.closeLabel") }, t("chat.close"));

  const messages = new Map(); // id -> li
  const users = new Map(); // id -> user
  const typers = new Map(); // userId -> {name, timer}
  let userCount = 0;
  let following = true;

  // ---- composer ----
  const inputId = uid("chat-input");
  const errorId = `${inputId}-error`;
  const input = h("input", { id: inputId, type: "text", class: "chat-input", maxlength: 500, autocomplete: "off",
    placeholder: t("chat.placeholder"), "aria-describedby": errorId, enterkeyhint: "send" });
  const sendButton = h("button", { type: "submit", class: "btn btn-primary btn-small" }, t("chat.send"));
  const composerError = h("p", { class: "chat-error", id: errorId, role: "alert" });
  const composer = me
    ? h("form", { class: "chat-form", novalidate: true },
      h("label", { for: inputId, class: "visually-hidden" }, t("chat.messageLabel")),
      h("div", { class: "chat-form-row" }, input, sendButton), composerError)
    : h("div", { class: "chat-form chat-guest" },
      h("a", { class: "btn btn-primary btn-small", href: `/auth/login?next=${encodeURIComponent(location.pathname)}` }, t("chat.login")),
      h("a", { class: "btn btn-ghost btn-small", href: "/auth/register" }, t("nav.signup")));

  const root = h("section", { class: "chat", "aria-labelledby": "chat-title" },
    h("header", { class: "chat-head" },
      h("h2", { id: "chat-title" }, t("chat.title")), usersButton, closeDrawer),
    usersList,
    h("div", { class: "chat-body" }, log, empty, jump),
    typingLine, state, composer);

  // ---- scrolling ----
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  const toBottom = () => { log.scrollTop = log.scrollHeight; };
  log.addEventListener("scroll", () => {
    following = nearBottom();
    if (following) jump.hidden = true;
  }, { passive: true });
  jump.addEventListener("click", () => {
    following = true;
    toBottom();
    jump.hidden = true;
    log.focus();
  });

  // ---- messages ----
  const badgesOf = (user) => (user.badges || []).map((b) => chatBadge(b, BADGE_WORDS()));

  const actionButton = (label, text, onClick, extra = "") => {
    const b = h("button", { type: "button", class: `chat-action ${extra}`, "aria-label": label, title: label }, text);
    b.addEventListener("click", onClick);
    return b;
  };

  const moderate = async (kind, message) => {
    const who = message.user.displayName || message.user.username;
    try {
      if (kind === "delete") {
        await api.del(`/api/messages/${encodeURIComponent(message.id)}`);
        removeMessage(message.id);
      } else if (kind === "timeout") {
        await api.post(`/api/channels/${encodeURIComponent(channel.id)}/bans`, { userId: message.user.id, durationSeconds: 600 });
        setState(t("chat.timedOut", { name: who }));
      } else if (kind === "ban") {
        const ok = await confirmDialog({ title: t("chat.banTitle", { name: who }), text: t("chat.banText"),
          confirmLabel: t("mod.ban"), danger: true });
        if (!ok) return;
        await api.post(`/api/channels/${encodeURIComponent(channel.id)}/bans`, { userId: message.user.id });
        setState(t("mod.banned", { name: who }));
      } else if (kind === "report") {
        const reason = await confirmDialog({ title: t("chat.reportTitle"), text: t("common.quoted", { text: message.content }),
          confirmLabel: t("chat.sendReport"), input: { label: t("chat.reportReason"), maxLength: 500 } });
        if (!reason) return;
        await api.post("/api/reports", { messageId: message.id, userId: message.user.id, channelId: channel.id, reason });
        setState(t("chat.reported"));
      }
    } catch (err) {
      setState(err.detail || t("common.tryAgain"));
    }
  };

  function renderMessage(message) {
    const user = message.user || {};
    const mine = me && user.id === me.id;
    const actions = [];
    const who = { name: user.username };
    if (canModerate || mine) actions.push(actionButton(t("chat.deleteLabel", who), t("common.delete"), () => moderate("delete", message)));
    if (canModerate && !mine && user.id !== channel.ownerId) {
      actions.push(actionButton(t("chat.timeoutLabel", who), t("chat.timeout"), () => moderate("timeout", message)));
      actions.push(actionButton(t("chat.banLabel", who), t("mod.ban"), () => moderate("ban", message), "chat-action-danger"));
    }
    if (me && !mine && !canModerate) actions.push(actionButton(t("chat.reportLabel", who), t("chat.report"), () => moderate("report", message)));
    const name = h("span", { class: "chat-name", style: { "--hue": String(hue(user.username)) } }, user.displayName || user.username || t("chat.someone"));
    return h("li", { class: "chat-message", dataset: { id: message.id, user: user.id || "" } },
      h("time", { class: "chat-time", datetime: message.createdAt }, clockTime(message.createdAt)),
      h("span", { class: "chat-line" }, badgesOf(user), name, h("span", { class: "visually-hidden" }, t("chat.says")),
        h("span", { class: "chat-sep", "aria-hidden": "true" }, ": "), h("span", { class: "chat-text" }, message.content)),
      actions.length ? h("span", { class: "chat-actions" }, actions) : null);
  }

  // Rows are made as messages arrive but enter the log once per animation frame, with one look at
  // the scroll position and one scroll: per message, a busy room had the browser lay the log out
  // and scroll it each time (two pages at 100 msg/s: 85-99 % of a core, a quarter of it in
  // toBottom's layout; bench/chat_browser.py). A row deleted or pushed out before its frame is
  // simply not appended: `messages` is the truth, `pending` only what the log has yet to show.
  let pending = [];
  let frame = 0;

  function flush() {
    frame = 0;
    const rows = pending.filter((li) => messages.get(li.dataset.id) === li);
    pending = [];
    if (!rows.length) return;
    const stick = following || nearBottom();
    log.append(...rows);
    if (stick) toBottom();
    else jump.hidden = false;
  }

  function addMessages(list) {
    let added = 0;
    for (const message of list) {
      if (!message || !message.id || messages.has(message.id) || message.deletedAt) continue;
      const li = renderMessage(message);
      messages.set(message.id, li);
      pending.push(li);
      added += 1;
      const typer = message.user && typers.get(message.user.id);
      if (typer) clearTyper(message.user.id);
    }
    while (messages.size > MAX_MESSAGES) {
      const [firstId, li] = messages.entries().next().value;
      li.remove();
      messages.delete(firstId);
    }
    if (pending.length > MAX_MESSAGES) pending = pending.slice(-MAX_MESSAGES); // a hidden tab gets no frames
    // written only when they change: even an unchanged `hidden` re-styles and lays the page out
    // (the `[hidden]` rule), which per incoming frame was 60 layouts a second in a busy room
    if (empty.hidden !== messages.size > 0) empty.hidden = messages.size > 0;
    if (empty.textContent !== t("chat.empty")) empty.textContent = t("chat.empty");
    if (added && !frame) frame = requestAnimationFrame(flush);
  }

  function removeMessage(id) {
    const li = messages.get(id);
    if (!li) return;
    li.remove();
    messages.delete(id);
    empty.hidden = messages.size > 0;
  }

  function resetMessages(list) {
    for (const li of messages.values()) li.remove();
    messages.clear();
    following = true;
    addMessages(list);
    if (!messages.size) {
      empty.hidden = false;
      empty.textContent = t("chat.empty");
    }
  }

  // ---- presence and typing ----
  const renderUsers = () => {
    usersButton.textContent = t("chat.inChat", { n: formatNumber(userCount) });
    const sorted = [...users.values()].sort((a, b) => (a.displayName || a.username || "").localeCompare(b.displayName || b.username || ""));
    usersList.replaceChildren(...sorted.map((u) => h("li", { class: "chat-user" }, avatar(u, 24), badgesOf(u), h("span", {}, u.displayName || u.username))));
    if (!sorted.length) usersList.append(h("li", { class: "muted" }, t("chat.onlyGuests")));
  };
  usersButton.addEventListener("click", () => {
    const open = usersList.hidden;
    usersList.hidden = !open;
    usersButton.setAttribute("aria-expanded", String(open));
  });

  function clearTyper(userId) {
    const typer = typers.get(userId);
    if (typer) clearTimeout(typer.timer);
    typers.delete(userId);
    renderTyping();
  }
  function renderTyping() {
    const names = [...typers.values()].map((typer) => typer.name);
    typingLine.textContent = !names.length ? ""
      : names.length === 1 ? t("chat.typing1", { name: names[0] })
        : names.length === 2 ? t("chat.typing2", { a: names[0], b: names[1] }) : t("chat.typingMany");
  }

  // ---- connection ----
  let stateTimer = null;
  function setState(text, sticky = false) {
    clearTimeout(stateTimer);
    state.textContent = text;
    if (text && !sticky) stateTimer = setTimeout(() => { state.textContent = ""; }, 6000);
  }

  const conn = new ChatConnection({
    channelId: channel.id,
    onState(s) {
      if (s === "open") setState("");
      else if (s === "reconnecting") {
        setState(t("chat.reconnecting"), true);
        if (!messages.size) empty.textContent = t("chat.notConnected");
      }
      root.dataset.connection = s;
      if (me) sendButton.disabled = s !== "open";
    },
    onEvent(event) {
      switch (event.type) {
        case "chat:history":
          if (event.recovered === true) addMessages(event.messages || []);
          else resetMessages(event.messages || []);
          break;
        case "chat:message":
          addMessages([event.message]);
          break;
        case "chat:deleted":
          removeMessage(event.messageId);
          break;
        case "chat:users":
          users.clear();
          for (const u of event.users || []) if (u && u.id) users.set(u.id, u);
          userCount = Number(event.count) || users.size;
          renderUsers();
          break;
        case "chat:user-joined":
          if (event.user && event.user.id && !users.has(event.user.id)) {
            users.set(event.user.id, event.user);
            userCount += 1;
            renderUsers();
          }
          break;
        case "chat:user-left":
          if (users.delete(event.userId)) {
            userCount = Math.max(0, userCount - 1);
            renderUsers();
          }
          clearTyper(event.userId);
          break;
        case "chat:typing": {
          const u = event.user;
          if (!u || !u.id || (me && u.id === me.id)) break;
          const old = typers.get(u.id);
          if (old) clearTimeout(old.timer);
          typers.set(u.id, { name: u.displayName || u.username, timer: setTimeout(() => clearTyper(u.id), TYPING_SHOWN_MS) });
          renderTyping();
          break;
        }
        case "chat:error":
          if (!event.nonce) setState(ERROR_WORDS()[event.code] || event.message || t("chat.error"));
          break;
        case "stream:viewers":
          onViewers(Number(event.count) || 0, event.streamId);
          break;
        case "stream:status":
          onStatus(event.status, event.streamId);
          break;
        default:
      }
    },
  });

  if (me) {
    const form = composer;
    input.addEventListener("input", () => {
      composerError.textContent = "";
      if (input.value.trim()) conn.typing();
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const content = input.value.trim();
      if (!content) return;
      if (content.length > 500) {
        composerError.textContent = ERROR_WORDS().too_long;
        return;
      }
      composerError.textContent = "";
      input.value = ""; // cleared at once; put back if the server refuses it
      following = true;
      try {
        await conn.send(content);
      } catch (err) {
        if (!input.value) input.value = content;
        composerError.textContent = ERROR_WORDS()[err.code] || err.message;
      }
    });
  }

  conn.start();
  return {
    root,
    closeButton: closeDrawer,
    connection: conn,
    focusComposer() { (me ? input : composer.querySelector("a")).focus(); },
    destroy() {
      conn.stop();
      cancelAnimationFrame(frame);
      clearTimeout(stateTimer);
      for (const typer of typers.values()) clearTimeout(typer.timer);
    },
  };
}
