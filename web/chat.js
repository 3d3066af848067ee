// The chat panel of the stream page: history, live messages, timestamps and badges, typing
// indicator, online users, inline moderator actions, reporting, and the composer.
//
// Messages are appended inside a fixed-height scroll box, so nothing outside it moves when they
// arrive; the box follows new messages only while the reader is at the bottom.

import { api } from "./api.js";
import * as auth from "./auth.js";
import { ChatConnection } from "./live.js";
import { t } from "./i18n.js";
import { avatar, chatBadge, clockTime, confirmDialog, h, uid } from "./ui.js";

const MAX_MESSAGES = 250;
const TYPING_SHOWN_MS = 4000;
const NEAR_BOTTOM_PX = 48;

const ERROR_WORDS = {
  unauthorized: "Log in to chat.",
  banned: "You are banned from this chat.",
  timed_out: "You are timed out. You can chat again later.",
  rate_limited: "You are sending messages too fast. Wait a moment.",
  slow_mode: "Slow mode is on. Wait a moment before your next message.",
  followers_only: "Only followers can chat here. Follow the channel to join in.",
  filtered: "That message was blocked by the channel's chat filters.",
  too_long: "Messages can be at most 500 characters.",
  invalid: "That message could not be sent.",
  unknown: "Chat is slow to confirm messages. Check the chat before sending it again.",
  unavailable: "Chat could not store that message. Try again in a moment.",
};

const BADGE_WORDS = { owner: "Creator", broadcaster: "Creator", moderator: "Mod", mod: "Mod", staff: "Staff" };

function errorText(code) {
  return code === "subscribers_only" ? t("chat.error.subscribersOnly") : ERROR_WORDS[code];
}

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

  const log = h("ol", { class: "chat-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Chat messages", tabindex: "0" });
  const empty = h("p", { class: "chat-empty muted" }, "Connecting to chat…");
  const jump = h("button", { type: "button", class: "btn btn-small chat-jump", hidden: true }, "New messages ↓");
  const typingLine = h("p", { class: "chat-typing", "aria-live": "off" });
  const state = h("p", { class: "chat-state", role: "status", "aria-live": "polite" });
  const usersId = uid("chat-users");
  const usersButton = h("button", { type: "button", class: "btn btn-ghost btn-small chat-users-btn", "aria-expanded": "false", "aria-controls": usersId }, "0 in chat");
  const usersList = h("ul", { class: "chat-users", id: usersId, role: "list", hidden: true, "aria-label": "People in chat" });
  const closeDrawer = h("button", { type: "button", class: "btn btn-ghost btn-small chat-close", "aria-label": "Close chat" }, "Close");

  const messages = new Map(); // id -> li
  const users = new Map(); // id -> user
  const typers = new Map(); // userId -> {name, timer}
  let userCount = 0;
  let following = true;

  // ---- composer ----
  const inputId = uid("chat-input");
  const errorId = `${inputId}-error`;
  const input = h("input", { id: inputId, type: "text", class: "chat-input", maxlength: 500, autocomplete: "off",
    placeholder: "Send a message", "aria-describedby": errorId, enterkeyhint: "send" });
  const sendButton = h("button", { type: "submit", class: "btn btn-primary btn-small" }, "Send");
  const composerError = h("p", { class: "chat-error", id: errorId, role: "alert" });
  const composer = me
    ? h("form", { class: "chat-form", novalidate: true },
      h("label", { for: inputId, class: "visually-hidden" }, "Chat message"),
      h("div", { class: "chat-form-row" }, input, sendButton), composerError)
    : h("div", { class: "chat-form chat-guest" },
      h("a", { class: "btn btn-primary btn-small", href: `/auth/login?next=${encodeURIComponent(location.pathname)}` }, "Log in to chat"),
      h("a", { class: "btn btn-ghost btn-small", href: "/auth/register" }, "Sign up"));

  const root = h("section", { class: "chat", "aria-labelledby": "chat-title" },
    h("header", { class: "chat-head" },
      h("h2", { id: "chat-title" }, "Chat"), usersButton, closeDrawer),
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
  const badgesOf = (user) => (user.badges || []).map((b) => chatBadge(b, BADGE_WORDS));

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
        setState(`${who} is timed out for 10 minutes.`);
      } else if (kind === "ban") {
        const ok = await confirmDialog({ title: `Ban ${who}?`, text: "They can no longer chat in this channel. You can lift the ban from the moderation page.",
          confirmLabel: "Ban", danger: true });
        if (!ok) return;
        await api.post(`/api/channels/${encodeURIComponent(channel.id)}/bans`, { userId: message.user.id });
        setState(`${who} is banned.`);
      } else if (kind === "report") {
        const reason = await confirmDialog({ title: "Report this message?", text: `“${message.content}”`, confirmLabel: "Send report",
          input: { label: "What is wrong with it?", maxLength: 500 } });
        if (!reason) return;
        await api.post("/api/reports", { messageId: message.id, userId: message.user.id, channelId: channel.id, reason });
        setState("Thanks. The channel's moderators will look at it.");
      }
    } catch (err) {
      setState(err.detail || "That did not work. Try again.");
    }
  };

  function renderMessage(message) {
    const user = message.user || {};
    const mine = me && user.id === me.id;
    const actions = [];
    if (canModerate || mine) actions.push(actionButton(`Delete message from ${user.username}`, "Delete", () => moderate("delete", message)));
    if (canModerate && !mine && user.id !== channel.ownerId) {
      actions.push(actionButton(`Time out ${user.username} for 10 minutes`, "Timeout", () => moderate("timeout", message)));
      actions.push(actionButton(`Ban ${user.username}`, "Ban", () => moderate("ban", message), "chat-action-danger"));
    }
    if (me && !mine && !canModerate) actions.push(actionButton(`Report message from ${user.username}`, "Report", () => moderate("report", message)));
    const name = h("span", { class: "chat-name", style: { "--hue": String(hue(user.username)) } }, user.displayName || user.username || "someone");
    return h("li", { class: "chat-message", dataset: { id: message.id, user: user.id || "" } },
      h("time", { class: "chat-time", datetime: message.createdAt }, clockTime(message.createdAt)),
      h("span", { class: "chat-line" }, badgesOf(user), name, h("span", { class: "visually-hidden" }, " says: "),
        h("span", { class: "chat-sep", "aria-hidden": "true" }, ": "), h("span", { class: "chat-text" }, message.content)),
      actions.length ? h("span", { class: "chat-actions" }, actions) : null);
  }

  function addMessages(list) {
    const stick = following || nearBottom();
    let added = 0;
    for (const message of list) {
      if (!message || !message.id || messages.has(message.id) || message.deletedAt) continue;
      const li = renderMessage(message);
      messages.set(message.id, li);
      log.append(li);
      added += 1;
      const t = message.user && typers.get(message.user.id);
      if (t) clearTyper(message.user.id);
    }
    while (messages.size > MAX_MESSAGES) {
      const [firstId, li] = messages.entries().next().value;
      li.remove();
      messages.delete(firstId);
    }
    empty.hidden = messages.size > 0;
    empty.textContent = "No messages yet. Say hello!";
    if (!added) return;
    if (stick) toBottom();
    else jump.hidden = false;
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
      empty.textContent = "No messages yet. Say hello!";
    }
  }

  // ---- presence and typing ----
  const renderUsers = () => {
    usersButton.textContent = `${userCount} in chat`;
    const sorted = [...users.values()].sort((a, b) => (a.displayName || a.username || "").localeCompare(b.displayName || b.username || ""));
    usersList.replaceChildren(...sorted.map((u) => h("li", { class: "chat-user" }, avatar(u, 24), badgesOf(u), h("span", {}, u.displayName || u.username))));
    if (!sorted.length) usersList.append(h("li", { class: "muted" }, "Only viewers who are not logged in."));
  };
  usersButton.addEventListener("click", () => {
    const open = usersList.hidden;
    usersList.hidden = !open;
    usersButton.setAttribute("aria-expanded", String(open));
  });

  function clearTyper(userId) {
    const t = typers.get(userId);
    if (t) clearTimeout(t.timer);
    typers.delete(userId);
    renderTyping();
  }
  function renderTyping() {
    const names = [...typers.values()].map((t) => t.name);
    typingLine.textContent = !names.length ? ""
      : names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
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
        setState("Chat is unavailable right now. Reconnecting…", true);
        if (!messages.size) empty.textContent = "Chat is not connected.";
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
          if (!event.nonce) setState(errorText(event.code) || event.message || "Chat error.");
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
        composerError.textContent = ERROR_WORDS.too_long;
        return;
      }
      composerError.textContent = "";
      input.value = ""; // cleared at once; put back if the server refuses it
      following = true;
      try {
        await conn.send(content);
      } catch (err) {
        if (!input.value) input.value = content;
        composerError.textContent = errorText(err.code) || err.message;
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
      clearTimeout(stateTimer);
      for (const t of typers.values()) clearTimeout(t.timer);
    },
  };
}
