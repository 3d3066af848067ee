// /dashboard/moderation: for the channel chosen with the switcher (?channel=): chat filters (banned words,
// profanity filter, slow mode, followers-only, subscribers-only), moderators, bans and timeouts, and viewers' reports with actions.

import { api } from "../api.js";
import * as auth from "../auth.js";
import { formatDateTime, formatUnit, relativeTime, t } from "../i18n.js";
import {
  avatar, checkbox, clearErrors, confirmDialog, field, formStatus, h, humanize, setBusy, showFieldErrors,
} from "../ui.js";
import { channelShell, dashShell, noChannelNotice, pickChannel } from "./dashboard.js";

/** "30 seconds", "2 minutes" (Intl, in the page's language) */
const seconds = (s) => (s % 60 ? formatUnit(s, "second") : formatUnit(s / 60, "minute"));

const SLOW_MODE = () => [
  { value: "0", label: t("mod.off") },
  ...[3, 5, 10, 30, 60, 120, 300, 600].map((s) => ({ value: String(s), label: seconds(s) })),
];

export const TIMEOUTS = () => [
  { value: "60", label: formatUnit(1, "minute") }, { value: "600", label: formatUnit(10, "minute") },
  { value: "3600", label: formatUnit(1, "hour") }, { value: "86400", label: formatUnit(1, "day") },
  { value: "604800", label: formatUnit(1, "week") }, { value: "", label: t("mod.permanentBan") },
];

export function userName(u) {
  return (u && (u.displayName || u.username)) || (u && u.id) || t("mod.unknownUser");
}

/** A user id from what a moderator typed: an id as is, a username through the public profile. */
async function resolveUser(value) {
  const v = value.trim().replace(/^@/, "");
  const user = await api.get(`/api/users/${encodeURIComponent(v)}`, { auth: false });
  return user;
}

function filtersCard(channel, initial) {
  const status = formStatus();
  const words = field({ name: "bannedWords", label: t("mod.bannedWords"), optional: true, multiline: true, rows: 4,
    hint: t("mod.bannedWordsHint") });
  const profanity = checkbox({ name: "profanityFilter", label: t("mod.profanity"), hint: t("mod.profanityHint") });
  const slow = field({ name: "slowModeSeconds", label: t("mod.slowMode"), options: SLOW_MODE(),
    hint: t("mod.slowModeHint") });
  const followers = checkbox({ name: "followersOnly", label: t("mod.followersOnly"), hint: t("mod.followersOnlyHint") });
  const subscribers = checkbox({ name: "subscribersOnly", label: t("moderation.subscribersOnly"), hint: t("moderation.subscribersOnlyHint") });
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "filters-title" },
    words.root, profanity.root, slow.root, followers.root, subscribers.root, status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, t("mod.saveFilters"))));
  const path = `/api/channels/${encodeURIComponent(channel.id)}/filters`;
  const fill = (f) => {
    words.input.value = (f.bannedWords || []).join("\n");
    profanity.input.checked = Boolean(f.profanityFilter);
    const value = String(f.slowModeSeconds || 0);
    if (![...slow.input.options].some((o) => o.value === value)) slow.input.append(h("option", { value }, formatUnit(Number(value), "second")));
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
      status.set(t("mod.filtersSaved"), "success");
    } catch (err) {
      const wordError = err.errors.find((x) => x.field && x.field.startsWith("bannedWords"));
      if (wordError) words.setError(humanize(wordError.message));
      status.set(wordError ? t("common.fixFields") : err.detail, "error");
    } finally {
      setBusy(form, false);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "filters-title" }, h("h2", { id: "filters-title" }, t("mod.chatSettings")), form);
}

/** "Add a person" form shared by moderators and bans. */
function personForm({ label, submitLabel, extra = [], onSubmit }) {
  const who = field({ name: "user", label, hint: t("mod.whoHint"), autocomplete: "off" });
  const status = formStatus();
  const form = h("form", { class: "form inline-form", novalidate: true }, who.root, ...extra.map((f) => f.root), status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-secondary" }, submitLabel)));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    who.setError(null);
    status.clear();
    if (!who.input.value.trim()) {
      who.setError(t("mod.whoMissing"));
      who.input.focus();
      return;
    }
    setBusy(form, true);
    try {
      let user;
      try {
        user = await resolveUser(who.input.value);
      } catch (err) {
        if (err.status === 404 || err.status === 422) throw Object.assign(new Error(), { field: t("mod.noSuchUser") });
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
      const remove = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": t("mod.removeModLabel", { name: userName(m.user) }) },
        t("ui.remove"));
      remove.addEventListener("click", async () => {
        await api.del(`${path}/${encodeURIComponent(m.user.id)}`);
        await load();
      });
      return h("li", { class: "person" }, avatar(m.user, 32), h("span", { class: "person-name" }, userName(m.user),
        m.user.username ? h("span", { class: "muted" }, ` @${m.user.username}`) : null), remove);
    }) : [h("li", { class: "muted" }, t("mod.noMods"))]));
  };
  load().catch(() => {});
  const form = personForm({
    label: t("mod.addModLabel"), submitLabel: t("mod.addMod"),
    async onSubmit(user, status) {
      await api.put(`${path}/${encodeURIComponent(user.id)}`);
      status.set(t("mod.modAdded", { name: userName(user) }), "success");
      await load();
    },
  });
  return h("section", { class: "card", "aria-labelledby": "mods-title" },
    h("h2", { id: "mods-title" }, t("mod.mods")),
    h("p", { class: "muted" }, t("mod.modsLead")),
    list, form);
}

function bansCard(channel) {
  const list = h("ul", { class: "people", role: "list" });
  const path = `/api/channels/${encodeURIComponent(channel.id)}/bans`;
  const load = async () => {
    const page = await api.get(`${path}?limit=100`);
    list.replaceChildren(...(page.items.length ? page.items.map((b) => {
      const lift = h("button", { type: "button", class: "btn btn-ghost btn-small",
        "aria-label": b.until ? t("mod.liftTimeoutLabel", { name: userName(b.user) }) : t("mod.liftBanLabel", { name: userName(b.user) }) },
      b.until ? t("mod.liftTimeout") : t("mod.unban"));
      lift.addEventListener("click", async () => {
        await api.del(`${path}/${encodeURIComponent(b.userId)}`);
        await load();
      });
      return h("li", { class: "person" }, avatar(b.user, 32),
        h("span", { class: "person-name" }, userName(b.user),
          h("span", { class: "muted small" }, b.until ? t("mod.timedOutUntil", { time: formatDateTime(b.until) }) : t("mod.bannedTag"),
            b.reason ? ` · ${t("common.quoted", { text: b.reason })}` : "")), lift);
    }) : [h("li", { class: "muted" }, t("mod.noBans"))]));
  };
  load().catch(() => {});
  const duration = field({ name: "duration", label: t("mod.length"), options: TIMEOUTS(), value: "600" });
  const reason = field({ name: "reason", label: t("mod.reason"), optional: true, maxLength: 500 });
  const form = personForm({
    label: t("mod.banLabel"), submitLabel: t("mod.apply"), extra: [duration, reason],
    async onSubmit(user, status) {
      const body = { userId: user.id };
      if (duration.input.value) body.durationSeconds = Number(duration.input.value);
      if (reason.input.value.trim()) body.reason = reason.input.value.trim();
      await api.post(path, body);
      status.set(body.durationSeconds ? t("mod.timedOut", { name: userName(user) }) : t("mod.banned", { name: userName(user) }), "success");
      reason.input.value = "";
      await load();
    },
  });
  return h("section", { class: "card", "aria-labelledby": "bans-title" }, h("h2", { id: "bans-title" }, t("mod.bans")), list, form);
}

const REPORT_STATUS = () => ({ open: t("mod.report.open"), resolved: t("mod.report.resolved"), dismissed: t("mod.report.dismissed") });
const REPORT_DONE = () => ({ open: t("mod.reopened"), resolved: t("mod.resolved"), dismissed: t("mod.dismissed") });

function reportsCard(channel) {
  const list = h("ul", { class: "reports", role: "list" });
  const status = formStatus();
  const load = async () => {
    let page;
    try {
      page = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/reports?limit=50`);
    } catch (err) {
      list.replaceChildren(h("li", { class: "muted" }, err.status === 404 ? t("mod.reportsDown") : err.detail));
      return;
    }
    const items = page.items || [];
    list.replaceChildren(...(items.length ? items.map((r) => {
      const actions = [];
      if (r.messageId) {
        const del = h("button", { type: "button", class: "btn btn-secondary btn-small" }, t("mod.deleteMessage"));
        del.addEventListener("click", async () => {
          try {
            await api.del(`/api/messages/${encodeURIComponent(r.messageId)}`);
            status.set(t("mod.messageDeleted"), "success");
          } catch (err) {
            status.set(err.detail, "error");
          }
        });
        actions.push(del);
      }
      const target = r.userId || (r.message && r.message.user && r.message.user.id);
      if (target) {
        for (const [label, length] of [[t("mod.timeout10"), 600], [t("mod.ban"), null]]) {
          const b = h("button", { type: "button", class: `btn btn-small ${length ? "btn-secondary" : "btn-danger-ghost"}` }, label);
          b.addEventListener("click", async () => {
            if (!length && !(await confirmDialog({ title: t("mod.banTitle"), text: t("mod.banText"), confirmLabel: t("mod.ban"), danger: true }))) return;
            try {
              await api.post(`/api/channels/${encodeURIComponent(channel.id)}/bans`,
                length ? { userId: target, durationSeconds: length, reason: r.reason } : { userId: target, reason: r.reason });
              status.set(length ? t("mod.userTimedOut") : t("mod.userBanned"), "success");
            } catch (err) {
              status.set(err.detail, "error");
            }
          });
          actions.push(b);
        }
      }
      // closing a report keeps it listed with its outcome; "Reopen" undoes a mistaken click
      const outcomes = r.status === "open" ? [[t("mod.resolve"), "resolved"], [t("mod.dismiss"), "dismissed"]] : [[t("mod.reopen"), "open"]];
      for (const [label, next] of outcomes) {
        const b = h("button", { type: "button", class: "btn btn-secondary btn-small" }, label);
        b.addEventListener("click", async () => {
          try {
            await api.patch(`/api/reports/${encodeURIComponent(r.id)}`, { status: next });
            status.set(REPORT_DONE()[next], "success");
            load();
          } catch (err) {
            status.set(err.detail, "error");
          }
        });
        actions.push(b);
      }
      return h("li", { class: "report", "data-status": r.status || "open" },
        h("p", { class: "report-reason" }, t("common.quoted", { text: r.reason }),
          r.status && r.status !== "open" ? h("span", { class: "badge" }, ` ${REPORT_STATUS()[r.status] || r.status}`) : null),
        r.message && r.message.content ? h("blockquote", { class: "report-quote" }, r.message.content) : null,
        h("p", { class: "muted small" }, r.messageId ? t("mod.reportedMessage") : t("mod.reportedUser"),
          r.createdAt ? [" · ", h("time", { datetime: r.createdAt, title: formatDateTime(r.createdAt) }, relativeTime(r.createdAt))] : ""),
        h("div", { class: "form-actions" }, actions));
    }) : [h("li", { class: "muted" }, t("mod.noReports"))]));
  };
  load();
  return { root: h("section", { class: "card", "aria-labelledby": "reports-title" },
    h("div", { class: "section-head" }, h("h2", { id: "reports-title" }, t("mod.reports")),
      h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => load() }, t("mod.refresh"))),
    list, status.el), load };
}

export default async function moderation(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const pick = await pickChannel(user, ctx);
  if (!ctx.isCurrent()) return;
  const { channel } = pick;
  if (!channel) {
    dashShell(view, t("title.moderation"), noChannelNotice());
    return;
  }
  const filters = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/filters`);
  if (!ctx.isCurrent()) return;
  const reports = reportsCard(channel);
  channelShell(view, t("title.moderation"), pick, ctx,
    h("div", { class: "dash-grid" },
      h("div", { class: "dash-col" }, filtersCard(channel, filters), reports.root),
      h("div", { class: "dash-col" }, moderatorsCard(channel), bansCard(channel))));
}
