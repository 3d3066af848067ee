// /dashboard/moderation: for the channel chosen with the switcher (?channel=): chat filters (banned words,
// profanity filter, slow mode, followers-only, subscribers-only), moderators, bans and timeouts, and viewers' reports with actions.

import { api } from "../api.js";
import { t } from "../i18n.js";
import * as auth from "../auth.js";
import {
  avatar, checkbox, clearErrors, confirmDialog, field, formatDate, formStatus, h, humanize, setBusy, showFieldErrors,
} from "../ui.js";
import { channelShell, dashShell, noChannelNotice, pickChannel } from "./dashboard.js";

const SLOW_MODE = [
  { value: "0", label: "Off" }, { value: "3", label: "3 seconds" }, { value: "5", label: "5 seconds" },
  { value: "10", label: "10 seconds" }, { value: "30", label: "30 seconds" }, { value: "60", label: "1 minute" },
  { value: "120", label: "2 minutes" }, { value: "300", label: "5 minutes" }, { value: "600", label: "10 minutes" },
];

export const TIMEOUTS = [
  { value: "60", label: "1 minute" }, { value: "600", label: "10 minutes" }, { value: "3600", label: "1 hour" },
  { value: "86400", label: "1 day" }, { value: "604800", label: "1 week" }, { value: "", label: "Permanent ban" },
];

export function userName(u) {
  return (u && (u.displayName || u.username)) || (u && u.id) || "Unknown user";
}

/** A user id from what a moderator typed: an id as is, a username through the public profile. */
async function resolveUser(value) {
  const v = value.trim().replace(/^@/, "");
  const user = await api.get(`/api/users/${encodeURIComponent(v)}`, { auth: false });
  return user;
}

function filtersCard(channel, initial) {
  const status = formStatus();
  const words = field({ name: "bannedWords", label: "Banned words", optional: true, multiline: true, rows: 4,
    hint: "One word or phrase per line (up to 200). Messages containing them are refused." });
  const profanity = checkbox({ name: "profanityFilter", label: "Filter profanity", hint: "Refuse messages with common swear words." });
  const slow = field({ name: "slowModeSeconds", label: "Slow mode", options: SLOW_MODE,
    hint: "How long each viewer waits between messages (moderators are exempt)." });
  const followers = checkbox({ name: "followersOnly", label: "Followers-only chat", hint: "Only followers of the channel can send messages." });
  const subscribers = checkbox({ name: "subscribersOnly", label: t("moderation.subscribersOnly"), hint: t("moderation.subscribersOnlyHint") });
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "filters-title" },
    words.root, profanity.root, slow.root, followers.root, subscribers.root, status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Save chat settings")));
  const path = `/api/channels/${encodeURIComponent(channel.id)}/filters`;
  const fill = (f) => {
    words.input.value = (f.bannedWords || []).join("\n");
    profanity.input.checked = Boolean(f.profanityFilter);
    const value = String(f.slowModeSeconds || 0);
    if (![...slow.input.options].some((o) => o.value === value)) slow.input.append(h("option", { value }, `${value} seconds`));
    slow.input.value = value;
    followers.input.checked = Boolean(f.followersOnly);
    subscribers.input.checked = Boolean(f.subscribersOnly);
  };
  fill(initial); // loaded before the form is shown, so a late answer never overwrites typing
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors({ words });
    status.clear();
    setBusy(form, true);
    try {
      fill(await api.put(path, {
        bannedWords: words.input.value.split("\n").map((w) => w.trim()).filter(Boolean),
        profanityFilter: profanity.input.checked,
        slowModeSeconds: Number(slow.input.value),
        followersOnly: followers.input.checked,
        subscribersOnly: subscribers.input.checked,
      }));
      status.set("Chat settings saved.", "success");
    } catch (err) {
      const wordError = err.errors.find((x) => x.field && x.field.startsWith("bannedWords"));
      if (wordError) words.setError(humanize(wordError.message));
      status.set(wordError ? "Please fix the highlighted fields." : err.detail, "error");
    } finally {
      setBusy(form, false);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "filters-title" }, h("h2", { id: "filters-title" }, "Chat settings"), form);
}

/** "Add a person" form shared by moderators and bans. */
function personForm({ label, submitLabel, extra = [], onSubmit }) {
  const who = field({ name: "user", label, hint: "Their username or user id.", autocomplete: "off" });
  const status = formStatus();
  const form = h("form", { class: "form inline-form", novalidate: true }, who.root, ...extra.map((f) => f.root), status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-secondary" }, submitLabel)));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    who.setError(null);
    status.clear();
    if (!who.input.value.trim()) {
      who.setError("Enter a username or user id.");
      who.input.focus();
      return;
    }
    setBusy(form, true);
    try {
      let user;
      try {
        user = await resolveUser(who.input.value);
      } catch (err) {
        if (err.status === 404 || err.status === 422) throw Object.assign(new Error(), { field: "No user with that username or id." });
        throw err;
      }
      await onSubmit(user, status);
      who.input.value = "";
    } catch (err) {
      if (err.field) {
        who.setError(err.field);
        who.input.focus();
      } else {
        const { shown } = showFieldErrors({}, err);
        status.set(shown ? "" : err.detail || err.message, "error");
      }
    } finally {
      setBusy(form, false);
    }
  });
  return form;
}

function moderatorsCard(channel) {
  const list = h("ul", { class: "people", role: "list" });
  const path = `/api/channels/${encodeURIComponent(channel.id)}/moderators`;
  const load = async () => {
    const mods = await api.get(path);
    list.replaceChildren(...(mods.length ? mods.map((m) => {
      const remove = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": `Remove ${userName(m.user)} as moderator` }, "Remove");
      remove.addEventListener("click", async () => {
        await api.del(`${path}/${encodeURIComponent(m.user.id)}`);
        await load();
      });
      return h("li", { class: "person" }, avatar(m.user, 32), h("span", { class: "person-name" }, userName(m.user),
        m.user.username ? h("span", { class: "muted" }, ` @${m.user.username}`) : null), remove);
    }) : [h("li", { class: "muted" }, "No moderators yet.")]));
  };
  load().catch(() => {});
  const form = personForm({
    label: "Add a moderator", submitLabel: "Add moderator",
    async onSubmit(user, status) {
      await api.put(`${path}/${encodeURIComponent(user.id)}`);
      status.set(`${userName(user)} is now a moderator.`, "success");
      await load();
    },
  });
  return h("section", { class: "card", "aria-labelledby": "mods-title" },
    h("h2", { id: "mods-title" }, "Moderators"),
    h("p", { class: "muted" }, "Moderators can delete messages, time out and ban viewers, and change the chat settings."),
    list, form);
}

function bansCard(channel) {
  const list = h("ul", { class: "people", role: "list" });
  const path = `/api/channels/${encodeURIComponent(channel.id)}/bans`;
  const load = async () => {
    const page = await api.get(`${path}?limit=100`);
    list.replaceChildren(...(page.items.length ? page.items.map((b) => {
      const lift = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": `Lift the ${b.until ? "timeout" : "ban"} of ${userName(b.user)}` },
        b.until ? "Lift timeout" : "Unban");
      lift.addEventListener("click", async () => {
        await api.del(`${path}/${encodeURIComponent(b.userId)}`);
        await load();
      });
      return h("li", { class: "person" }, avatar(b.user, 32),
        h("span", { class: "person-name" }, userName(b.user),
          h("span", { class: "muted small" }, b.until ? ` · timed out until ${new Date(b.until).toLocaleString()}` : " · banned",
            b.reason ? ` · “${b.reason}”` : "")), lift);
    }) : [h("li", { class: "muted" }, "Nobody is banned or timed out.")]));
  };
  load().catch(() => {});
  const duration = field({ name: "duration", label: "Length", options: TIMEOUTS, value: "600" });
  const reason = field({ name: "reason", label: "Reason", optional: true, maxLength: 500 });
  const form = personForm({
    label: "Ban or time out", submitLabel: "Apply", extra: [duration, reason],
    async onSubmit(user, status) {
      const body = { userId: user.id };
      if (duration.input.value) body.durationSeconds = Number(duration.input.value);
      if (reason.input.value.trim()) body.reason = reason.input.value.trim();
      await api.post(path, body);
      status.set(body.durationSeconds ? `${userName(user)} is timed out.` : `${userName(user)} is banned.`, "success");
      reason.input.value = "";
      await load();
    },
  });
  return h("section", { class: "card", "aria-labelledby": "bans-title" }, h("h2", { id: "bans-title" }, "Bans and timeouts"), list, form);
}

function reportsCard(channel) {
  const list = h("ul", { class: "reports", role: "list" });
  const status = formStatus();
  const load = async () => {
    let page;
    try {
      page = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/reports?limit=50`);
    } catch (err) {
      list.replaceChildren(h("li", { class: "muted" }, err.status === 404 ? "Reports are not available: the chat service is not running." : err.detail));
      return;
    }
    const items = page.items || [];
    list.replaceChildren(...(items.length ? items.map((r) => {
      const actions = [];
      if (r.messageId) {
        const del = h("button", { type: "button", class: "btn btn-secondary btn-small" }, "Delete message");
        del.addEventListener("click", async () => {
          try {
            await api.del(`/api/messages/${encodeURIComponent(r.messageId)}`);
            status.set("Message deleted.", "success");
          } catch (err) {
            status.set(err.detail, "error");
          }
        });
        actions.push(del);
      }
      const target = r.userId || (r.message && r.message.user && r.message.user.id);
      if (target) {
        for (const [label, seconds] of [["Time out 10 min", 600], ["Ban", null]]) {
          const b = h("button", { type: "button", class: `btn btn-small ${seconds ? "btn-secondary" : "btn-danger-ghost"}` }, label);
          b.addEventListener("click", async () => {
            if (!seconds && !(await confirmDialog({ title: "Ban this user?", text: "They can no longer chat in your channel.", confirmLabel: "Ban", danger: true }))) return;
            try {
              await api.post(`/api/channels/${encodeURIComponent(channel.id)}/bans`,
                seconds ? { userId: target, durationSeconds: seconds, reason: r.reason } : { userId: target, reason: r.reason });
              status.set(seconds ? "User timed out." : "User banned.", "success");
            } catch (err) {
              status.set(err.detail, "error");
            }
          });
          actions.push(b);
        }
      }
      // closing a report keeps it listed with its outcome; "Reopen" undoes a mistaken click
      const outcomes = r.status === "open" ? [["Resolve", "resolved"], ["Dismiss", "dismissed"]] : [["Reopen", "open"]];
      for (const [label, next] of outcomes) {
        const b = h("button", { type: "button", class: "btn btn-secondary btn-small" }, label);
        b.addEventListener("click", async () => {
          try {
            await api.patch(`/api/reports/${encodeURIComponent(r.id)}`, { status: next });
            status.set(`Report ${next === "open" ? "reopened" : next}.`, "success");
            load();
          } catch (err) {
            status.set(err.detail, "error");
          }
        });
        actions.push(b);
      }
      return h("li", { class: "report", "data-status": r.status || "open" },
        h("p", { class: "report-reason" }, `“${r.reason}”`, r.status && r.status !== "open" ? h("span", { class: "badge" }, ` ${r.status}`) : null),
        r.message && r.message.content ? h("blockquote", { class: "report-quote" }, r.message.content) : null,
        h("p", { class: "muted small" }, r.messageId ? "Reported message" : "Reported user", r.createdAt ? ` · ${formatDate(r.createdAt)}` : ""),
        h("div", { class: "form-actions" }, actions));
    }) : [h("li", { class: "muted" }, "No reports. Viewers can report messages from the chat.")]));
  };
  load();
  return { root: h("section", { class: "card", "aria-labelledby": "reports-title" },
    h("div", { class: "section-head" }, h("h2", { id: "reports-title" }, "Reports"),
      h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => load() }, "Refresh")),
    list, status.el), load };
}

export default async function moderation(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const pick = await pickChannel(user, ctx);
  if (!ctx.isCurrent()) return;
  const { channel } = pick;
  if (!channel) {
    dashShell(view, "Moderation", noChannelNotice());
    return;
  }
  const filters = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/filters`);
  if (!ctx.isCurrent()) return;
  const reports = reportsCard(channel);
  channelShell(view, "Moderation", pick, ctx,
    h("div", { class: "dash-grid" },
      h("div", { class: "dash-col" }, filtersCard(channel, filters), reports.root),
      h("div", { class: "dash-col" }, moderatorsCard(channel), bansCard(channel))));
}
