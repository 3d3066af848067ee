// /dashboard: the creator's overview of one of their channels (chosen with the channel switcher and
// kept in the URL as ?channel=<id>, so a reload or a shared link keeps it). Without a channel:
// create one; /dashboard/new-channel adds another. With one: stream status and viewer count
// (polled every 2 s: a chat socket here would count the creator as a viewer), Go live and End
// stream, the encoder settings (RTMP URL, stream key hidden by default, copy, rotate), simulcast
// destinations with their live state, the past
// broadcasts, follower and view counts and the profile summary.

import { api } from "../api.js";
import { formatDateTime, formatNumber, midSentence, t, tn, tx } from "../i18n.js";
import * as auth from "../auth.js";
import {
  announce, avatar, clearErrors, confirmDialog, copyText, field, focusFirstInvalid, formatDate, formatDuration,
  formStatus, h, safeHttpUrl, setBusy, showFieldErrors, uid,
} from "../ui.js";
import { viewersText } from "./home.js";

const POLL_MS = 2000;

/** Side navigation shared by the dashboard pages; the channel pages keep the chosen channel. */
export function dashboardNav(channel = null) {
  const q = channel ? `?channel=${encodeURIComponent(channel.id)}` : "";
  return h("nav", { class: "dash-nav", "aria-label": t("dash.nav") },
    h("ul", { role: "list" },
      h("li", {}, h("a", { href: `/dashboard${q}` }, t("dash.overview"))),
      h("li", {}, h("a", { href: `/dashboard/channel${q}` }, t("dash.channel"))),
      h("li", {}, h("a", { href: `/dashboard/moderation${q}` }, t("dash.moderation"))),
      h("li", {}, h("a", { href: "/dashboard/profile" }, t("dash.profile")))));
}

/** All of the caller's channels, oldest first: a stable order for the switcher (the directory's
 * order moves whenever one goes live). */
export async function myChannels() {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(`/api/channels?owner=me&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id));
}

// the last channel chosen in this browser, per user: the pages reached without ?channel= (the
// account menu, the profile page) open on it rather than on the oldest
const CHOSEN_KEY = "sp.dashboardChannel";

function remembered(user) {
  try {
    const saved = JSON.parse(localStorage.getItem(CHOSEN_KEY) || "null");
    return saved && saved.user === user.id ? saved.channel : null;
  } catch {
    return null;
  }
}

function remember(user, channelId) {
  try {
    localStorage.setItem(CHOSEN_KEY, JSON.stringify({ user: user.id, channel: channelId }));
  } catch {
    /* private mode or full: the URL still carries the choice */
  }
}

/** The channel a dashboard page works on: ?channel= (an id or a slug) when it is one of the
 * caller's, else the one chosen last, else the oldest. The URL is set to it, so a reload keeps it.
 * -> { channels, channel (the detail view, with canModerate), unknown (?channel= named none of
 * them) }; channel is null when the caller has none yet. */
export async function pickChannel(user, ctx) {
  const channels = await myChannels();
  const asked = ctx.query.get("channel");
  const find = (ref) => (ref ? channels.find((c) => c.id === ref || c.slug === ref) : null);
  const chosen = find(asked) || find(remembered(user)) || channels[0] || null;
  if (!chosen) return { channels, channel: null, unknown: Boolean(asked) };
  remember(user, chosen.id);
  if (asked !== chosen.id && ctx.isCurrent()) {
    const query = new URLSearchParams(location.search);
    query.set("channel", chosen.id);
    history.replaceState(null, "", `${location.pathname}?${query}${location.hash}`);
  }
  const channel = await api.get(`/api/channels/${encodeURIComponent(chosen.id)}`);
  return { channels, channel, unknown: Boolean(asked) && find(asked) == null };
}

/** The switcher: a labelled select of the caller's channels (changing it opens the same page for
 * the other channel) and the way to add one. */
export function channelSwitcher(pick, ctx) {
  const id = uid("channel-switch");
  const select = h("select", { id, name: "channel", class: "channel-select" },
    pick.channels.map((c) => h("option", { value: c.id, selected: c.id === pick.channel.id },
      c.isLive ? t("dash.channelLive", { name: c.name }) : c.name)));
  select.addEventListener("change", () => {
    const query = new URLSearchParams(location.search);
    query.set("channel", select.value);
    ctx.navigate(`${location.pathname}?${query}`);
  });
  return h("div", { class: "channel-switcher" },
    h("label", { for: id }, t("dash.yourChannel")), select,
    h("a", { class: "btn btn-secondary btn-small", href: "/dashboard/new-channel" }, t("title.newChannel")),
    pick.unknown ? h("p", { class: "notice", role: "status" },
      tx("dash.notYours", { name: h("strong", {}, pick.channel.name) })) : null);
}

export function dashShell(view, title, ...content) {
  channelShell(view, title, null, null, ...content);
}

/** dashShell with the channel switcher above the page (when the caller has a channel). */
export function channelShell(view, title, pick, ctx, ...content) {
  const channel = pick && pick.channel;
  view.append(
    h("div", { class: "container dash" },
      dashboardNav(channel),
      h("div", { class: "dash-main" },
        h("div", { class: "dash-head" }, h("h1", {}, title), channel ? channelSwitcher(pick, ctx) : null),
        ...content)));
}

export function noChannelNotice() {
  return h("p", { class: "notice" }, tx("dash.noChannel", { link: h("a", { href: "/dashboard" }, t("dash.noChannelLink")) }));
}

function profileSummary(user) {
  const links = Object.entries((user.profile && user.profile.socialLinks) || {})
    .map(([name, url]) => [name, safeHttpUrl(url)])
    .filter(([, url]) => url);
  const since = user.createdAt ? new Date(user.createdAt) : null;
  return h("section", { class: "card profile-summary", "aria-labelledby": "summary-title" },
    h("div", { class: "summary-head" },
      avatar(user, 72),
      h("div", { class: "summary-names" },
        h("h2", { id: "summary-title", class: "display-name" }, user.displayName || user.username),
        h("p", { class: "muted username" }, `@${user.username}`))),
    user.bio ? h("p", { class: "bio" }, user.bio) : h("p", { class: "muted" }, t("dash.noBio")),
    links.length
      ? h("ul", { class: "social-links", role: "list", "aria-label": t("ui.socialLinks") },
        links.map(([name, url]) => h("li", {},
          h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, name,
            h("span", { class: "visually-hidden" }, t("dash.newTab"))))))
      : null,
    since && !Number.isNaN(since.getTime())
      ? h("p", { class: "muted small" }, tx("dash.memberSince", {
        date: h("time", { datetime: user.createdAt }, formatDateTime(since, { year: "numeric", month: "long", day: "numeric" })) }))
      : null,
    h("p", {}, h("a", { class: "btn btn-secondary", href: "/dashboard/profile" }, t("nav.editProfile"))));
}

// ---- create a channel ----------------------------------------------------------------------

const CHANNEL_WORDS = () => ({
  slug: { string_pattern_mismatch: t("chan.slugPattern"), conflict: t("chan.slugTaken"), "*": null },
  category: { string_pattern_mismatch: t("chan.categoryPattern") },
});

/** The username as a channel address (usernames are unique, so this one is usually free). */
function suggestedSlug(username) {
  const slug = String(username || "").replace(/_/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  return /^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$/.test(slug) ? slug : "";
}

function createChannelCard(user, onCreated, { first = true } = {}) {
  const fields = {
    name: field({ name: "name", label: t("chan.name"), required: true, maxLength: 80, value: first ? user.displayName || user.username : "" }),
    slug: field({ name: "slug", label: t("chan.slug"), optional: true, maxLength: 40, value: first ? suggestedSlug(user.username) : "",
      hint: t("dash.slugHint") }),
    category: field({ name: "category", label: t("chan.category"), optional: true, maxLength: 40, hint: t("dash.categoryHint") }),
    description: field({ name: "description", label: t("chan.description"), optional: true, multiline: true, rows: 3, maxLength: 2000 }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "create-title" },
    ...Object.values(fields).map((f) => f.root), status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, t("dash.createChannel"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    status.clear();
    if (!fields.name.input.value.trim()) {
      fields.name.setError(t("chan.nameMissing"));
      focusFirstInvalid(form);
      return;
    }
    const body = { name: fields.name.input.value.trim() };
    for (const key of ["slug", "category", "description"]) {
      const value = fields[key].input.value.trim();
      if (value) body[key] = value;
    }
    setBusy(form, true);
    try {
      const channel = await api.post("/api/channels", body);
      announce(t("dash.created"));
      onCreated(channel);
    } catch (err) {
      setBusy(form, false);
      // a 409 is a taken address (on the slug field) or the channel limit (no field: its detail says so)
      const { shown } = showFieldErrors(fields, err, CHANNEL_WORDS());
      status.set(shown ? t("common.fixFields") : err.detail, "error");
      focusFirstInvalid(form);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, first ? t("dash.createFirst") : t("dash.createAnother")),
    h("p", { class: "muted" }, first ? t("dash.createFirstLead") : t("dash.createAnotherLead")),
    form);
}

// ---- encoder settings: RTMP URL and stream key ----------------------------------------------

function secretRow({ label, value, secret, onCopy }) {
  const spoken = midSentence(label); // "RTMP URL" keeps its capitals
  const id = uid("secret");
  const input = h("input", { id, type: secret ? "password" : "text", readonly: true, class: "mono", spellcheck: "false", autocomplete: "off" });
  input.value = value;
  const copy = h("button", { type: "button", class: "btn btn-secondary btn-small" }, t("dash.copy"));
  copy.setAttribute("aria-label", t("dash.copyLabel", { label: spoken }));
  copy.addEventListener("click", () => onCopy(input.value, label));
  let toggle = null;
  if (secret) {
    toggle = h("button", { type: "button", class: "btn btn-secondary btn-small", "aria-pressed": "false", "aria-controls": id,
      "aria-label": t("ui.showLabel", { label: spoken }) }, t("ui.show"));
    toggle.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      toggle.textContent = show ? t("ui.hide") : t("ui.show");
      toggle.setAttribute("aria-pressed", String(show));
      toggle.setAttribute("aria-label", show ? t("ui.hideLabel", { label: spoken }) : t("ui.showLabel", { label: spoken }));
    });
  }
  const root = h("div", { class: "field" }, h("label", { for: id }, label),
    h("div", { class: "input-with-action secret-row" }, input, h("span", { class: "secret-actions" }, toggle, copy)));
  return { root, input, hide() { if (input.type === "text" && toggle) toggle.click(); } };
}

function encoderCard(channel) {
  const status = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "encoder-body" }, h("p", { class: "muted" }, t("common.loading")));
  const say = (text, kind = "info") => { status.dataset.kind = kind; status.textContent = text; };
  const onCopy = async (value, label) => {
    if (await copyText(value)) say(t("dash.copied", { label }), "success");
    else say(t("dash.copyFailed", { label }), "error");
  };

  const PROVIDERS = { local: t("dash.providerLocal"), mux: "Mux", cloudflare: "Cloudflare Stream" };
  const providerChoice = (current) => {
    const id = uid("provider");
    const select = h("select", { id, name: "provider" },
      ...Object.entries(PROVIDERS).map(([value, label]) => h("option", { value }, label)));
    select.value = current;
    const apply = h("button", { type: "button", class: "btn btn-secondary btn-small" }, t("dash.switch"));
    apply.addEventListener("click", async () => {
      if (select.value === current) return;
      const ok = await confirmDialog({
        title: t("dash.switchTitle", { provider: PROVIDERS[select.value] }),
        text: t("dash.switchText"),
        confirmLabel: t("dash.switch"),
      });
      if (!ok) return;
      apply.disabled = true;
      say(t("dash.switching", { provider: PROVIDERS[select.value] }));
      try {
        await api.put(`/api/channels/${encodeURIComponent(channel.id)}`, { provider: select.value });
        render(await api.get(`/api/channels/${encodeURIComponent(channel.id)}/stream-key`));
        say(t("dash.switched", { provider: PROVIDERS[select.value] }), "success");
      } catch (err) {
        apply.disabled = false;
        select.value = current;
        say(err.detail, "error");
      }
    });
    return h("div", { class: "field" }, h("label", { for: id }, t("dash.provider")),
      h("div", { class: "input-with-action" }, select, apply),
      h("p", { class: "hint" }, t("dash.providerHint")));
  };

  const render = (keys) => {
    const provider = keys.provider || "local";
    const hosted = provider !== "local";
    const rtmp = secretRow({ label: hosted ? t("dash.rtmpsUrl") : t("dash.rtmpUrl"), value: keys.rtmpUrl, secret: false, onCopy });
    const key = secretRow({ label: t("dash.streamKey"), value: keys.streamKey, secret: true, onCopy });
    // an SRT URL carries the key or the provider's passphrase: as secret as the key
    const srt = keys.srtUrl ? secretRow({ label: t("dash.srtUrl"), value: keys.srtUrl, secret: true, onCopy }) : null;
    const playback = keys.playbackUrl ? secretRow({ label: t("dash.playbackUrl"), value: keys.playbackUrl, secret: false, onCopy }) : null;
    const rotate = h("button", { type: "button", class: "btn btn-danger-ghost btn-small" }, t("dash.rotate"));
    rotate.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: t("dash.rotateTitle"),
        text: t("dash.rotateText"),
        confirmLabel: t("dash.rotate"), danger: true,
      });
      if (!ok) return;
      rotate.disabled = true;
      try {
        const fresh = await api.post(`/api/channels/${encodeURIComponent(channel.id)}/stream-key/rotate`);
        render(fresh);
        say(t("dash.rotated"), "success");
      } catch (err) {
        rotate.disabled = false;
        say(err.detail, "error");
      }
    });
    body.replaceChildren(providerChoice(provider), rtmp.root, key.root, ...(srt ? [srt.root] : []),
      ...(playback ? [playback.root] : []),
      h("p", { class: "hint" }, hosted ? t("dash.obsHosted", { provider: PROVIDERS[provider] }) : t("dash.obsLocal")),
      ...(srt && !hosted ? [h("p", { class: "hint" }, t("dash.obsSrt"))] : []),
      // the first HLS segment ends at the encoder's second key frame: this interval is the start-up delay
      h("p", { class: "hint" }, t("dash.keyframes")),
      h("div", { class: "form-actions" }, rotate));
  };

  api.get(`/api/channels/${encodeURIComponent(channel.id)}/stream-key`)
    .then(render)
    .catch((err) => body.replaceChildren(h("p", { class: "field-error" }, err.detail)));

  return h("section", { class: "card", "aria-labelledby": "encoder-title" },
    h("h2", { id: "encoder-title" }, t("dash.encoder")), body, status);
}

// ---- simulcast destinations ---------------------------------------------------------------------

const SIMULCAST_WORDS = () => ({ idle: t("dash.dest.idle"), connecting: t("dash.dest.connecting"), live: t("dash.dest.live"),
  failed: t("dash.dest.failed") });

/** Restream destinations (API.md Extensions: Simulcast): add, enable/disable, remove; each row shows
 * the state the ingest reports while the channel is live (polled like the stream card). The key
 * field is write-only: the API answers its last 4 characters only. */
function simulcastCard(channel) {
  const base = `/api/channels/${encodeURIComponent(channel.id)}/destinations`;
  const list = h("ul", { class: "destination-list", role: "list" });
  const status = formStatus();
  let stopped = false;
  let timer = null;

  const row = (d) => {
    const state = h("span", { class: "status-badge destination-state", "data-state": d.state }, SIMULCAST_WORDS()[d.state] || d.state);
    const toggle = h("button", { type: "button", class: "btn btn-secondary btn-small" }, d.enabled ? t("dash.disable") : t("dash.enable"));
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try { await api.put(`${base}/${encodeURIComponent(d.id)}`, { enabled: !d.enabled }); await load(); }
      catch (err) { status.set(err.detail, "error"); toggle.disabled = false; }
    });
    const remove = h("button", { type: "button", class: "btn btn-danger-ghost btn-small" }, t("ui.remove"));
    remove.addEventListener("click", async () => {
      const ok = await confirmDialog({ title: t("dash.dest.removeTitle", { name: d.name }), text: t("dash.dest.removeText"),
        confirmLabel: t("ui.remove"), danger: true });
      if (!ok) return;
      try { await api.del(`${base}/${encodeURIComponent(d.id)}`); await load(); status.set(t("dash.dest.removed", { name: d.name }), "success"); }
      catch (err) { status.set(err.detail, "error"); }
    });
    return h("li", { class: "destination", "data-destination-id": d.id },
      h("p", {}, h("strong", {}, d.name), " ", state, d.enabled ? null : h("span", { class: "muted" }, t("dash.dest.disabled"))),
      h("p", { class: "muted" }, t("dash.dest.url", { url: d.url, last4: d.streamKeyLast4 })),
      d.lastError ? h("p", { class: "field-error destination-error" }, d.lastError) : null,
      h("p", { class: "form-actions" }, toggle, remove));
  };

  async function load() {
    try {
      const { items } = await api.get(base);
      list.replaceChildren(...(items.length ? items.map(row) : [h("li", { class: "muted" }, t("dash.dest.none"))]));
    } catch (err) {
      list.replaceChildren(h("li", { class: "field-error" }, err.detail));
    }
  }

  const fields = {
    name: field({ name: "name", label: t("dash.dest.name"), required: true, maxLength: 80, hint: t("dash.dest.nameHint") }),
    url: field({ name: "url", label: t("dash.dest.server"), required: true, maxLength: 512, hint: t("dash.dest.serverHint") }),
    streamKey: field({ name: "streamKey", label: t("dash.dest.key"), type: "password", required: true, maxLength: 512,
      autocomplete: "off", hint: t("dash.dest.keyHint") }),
  };
  const form = h("form", { class: "destination-form", novalidate: true },
    fields.name.root, fields.url.root, fields.streamKey.root,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-small" }, t("dash.dest.add"))),
    status.el);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    setBusy(form, true);
    try {
      const created = await api.post(base, { name: fields.name.input.value, url: fields.url.input.value,
        streamKey: fields.streamKey.input.value, enabled: true });
      for (const f of Object.values(fields)) f.input.value = "";
      status.set(t("dash.dest.added", { name: created.name }), "success");
      await load();
    } catch (err) {
      if (!showFieldErrors(fields, err).shown) status.set(err.detail, "error");
    } finally {
      setBusy(form, false);
    }
  });

  const poll = async () => {
    if (stopped) return;
    await load();
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };
  poll();

  return {
    root: h("section", { class: "card", "aria-labelledby": "simulcast-title" },
      h("h2", { id: "simulcast-title" }, t("dash.simulcast")),
      h("p", { class: "hint" }, t("dash.simulcastHint")),
      list, form),
    stop() { stopped = true; clearTimeout(timer); },
  };
}

// ---- stream status, Go live, End stream -------------------------------------------------------

const STATUS_WORDS = () => ({
  OFFLINE: t("dash.status.offline"), LIVE: t("dash.status.live"), ENDING: t("dash.status.ending"), ARCHIVED: t("dash.status.ended"),
});

function streamCard(channel) {
  let stream = null; // the current session: OFFLINE (prepared), LIVE or ENDING
  let timer = null;
  let stopped = false;
  let lastAnnounced = null;

  const badge = h("span", { class: "status-badge", "data-status": "OFFLINE" }, t("dash.status.offline"));
  const viewers = h("span", { class: "stat" }, viewersText(0));
  const uptime = h("span", { class: "stat muted" });
  const info = h("p", { class: "muted stream-hint" });
  const liveRegion = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const status = formStatus();

  const fields = {
    title: field({ name: "title", label: t("dash.streamTitle"), maxLength: 140, required: true, hint: t("dash.streamTitleHint") }),
    description: field({ name: "description", label: t("chan.description"), optional: true, multiline: true, rows: 2, maxLength: 2000 }),
  };
  const goLive = h("button", { type: "submit", class: "btn btn-primary" }, t("dash.goLive"));
  const end = h("button", { type: "button", class: "btn btn-danger", hidden: true }, t("dash.endStream"));
  const form = h("form", { class: "form", novalidate: true, "aria-label": t("dash.goLive") },
    fields.title.root, fields.description.root, status.el, h("div", { class: "form-actions" }, goLive, end));

  const show = () => {
    const s = stream ? stream.status : "OFFLINE";
    const live = s === "LIVE";
    badge.dataset.status = s;
    badge.textContent = STATUS_WORDS()[s] || s;
    viewers.textContent = viewersText(live ? stream.viewerCount : 0);
    viewers.hidden = !live;
    uptime.textContent = live && stream.startTime
      ? t("dash.uptime", { duration: formatDuration((Date.now() - Date.parse(stream.startTime)) / 1000) }) : "";
    end.hidden = !(stream && (s === "LIVE" || s === "OFFLINE"));
    goLive.textContent = stream && s === "OFFLINE" ? t("dash.updateTitle") : t("dash.goLive");
    goLive.hidden = s === "LIVE" || s === "ENDING";
    info.textContent = !stream ? t("dash.info.none")
      : s === "OFFLINE" ? t("dash.info.ready")
        : s === "LIVE" ? t("dash.info.live") : s === "ENDING" ? t("dash.info.ending") : "";
    if (lastAnnounced !== s) {
      if (lastAnnounced !== null) {
        liveRegion.textContent = t("dash.statusAnnounce", { status: badge.textContent });
        status.clear(); // the last action's message is about the previous state
      }
      lastAnnounced = s;
    }
    if (stream && document.activeElement !== fields.title.input && !fields.title.input.value) fields.title.input.value = stream.title || "";
  };

  const poll = async () => {
    clearTimeout(timer);
    try {
      if (stream) {
        stream = await api.get(`/api/streams/${encodeURIComponent(stream.id)}`);
        if (stream.status === "ARCHIVED") stream = null;
      } else {
        const list = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/streams?limit=1`);
        const latest = list.items[0];
        stream = latest && latest.status !== "ARCHIVED" ? latest : null;
      }
      show();
    } catch {
      /* transient: next tick */
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    status.clear();
    const title = fields.title.input.value.trim();
    if (!title) {
      fields.title.setError(t("dash.titleMissing"));
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    try {
      const body = { title };
      const description = fields.description.input.value.trim();
      if (description) body.description = description;
      // a channel created a moment ago may not have reached the streams service yet (404)
      for (let attempt = 0; ; attempt += 1) {
        try {
          stream = await api.post(`/api/streams/${encodeURIComponent(channel.id)}/start`, body);
          break;
        } catch (err) {
          if (err.status !== 404 || attempt >= 10) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      status.set(stream.status === "LIVE" ? t("dash.info.live") : t("dash.started"), "success");
      show();
    } catch (err) {
      const { shown } = showFieldErrors(fields, err);
      status.set(shown ? t("common.fixFields") : err.detail, "error");
    } finally {
      setBusy(form, false);
    }
  });

  end.addEventListener("click", async () => {
    if (!stream) return;
    const ok = await confirmDialog({ title: t("dash.endTitle"), text: t("dash.endText"),
      confirmLabel: t("dash.endStream"), danger: true });
    if (!ok) return;
    end.disabled = true;
    try {
      stream = await api.post(`/api/streams/${encodeURIComponent(stream.id)}/end`);
      status.set(t("dash.ended"), "success");
      show();
    } catch (err) {
      status.set(err.detail, "error");
    } finally {
      end.disabled = false;
    }
  });

  show();
  poll();
  const root = h("section", { class: "card stream-card", "aria-labelledby": "stream-title" },
    h("div", { class: "section-head" }, h("h2", { id: "stream-title" }, t("dash.stream")), badge, viewers, uptime),
    info, liveRegion,
    h("p", {}, h("a", { href: `/streams/${encodeURIComponent(channel.slug)}` }, t("dash.openStreamPage"))),
    form);
  return { root, stop: () => { stopped = true; clearTimeout(timer); } };
}

// ---- past broadcasts --------------------------------------------------------------------------

export function vodList(channel, { linkTo = (vod) => `/streams/${encodeURIComponent(channel.slug)}?vod=${encodeURIComponent(vod.id)}`, limit = 12 } = {}) {
  const list = h("ul", { class: "vod-list", role: "list" });
  const empty = h("p", { class: "muted", hidden: true }, t("dash.noVods"));
  const load = async () => {
    try {
      const page = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/vod?limit=${limit}`);
      list.replaceChildren(...page.items.map((vod) => h("li", { class: "vod-item" },
        h("a", { class: "vod-link", href: linkTo(vod) },
          h("div", { class: "vod-thumb" },
            vod.thumbnailUrl ? h("img", { src: vod.thumbnailUrl, alt: "", loading: "lazy", width: 160, height: 90 }) : null,
            vod.duration != null ? h("span", { class: "vod-duration" }, formatDuration(vod.duration)) : null),
          h("span", { class: "vod-text" },
            h("span", { class: "vod-title" }, vod.title),
            h("span", { class: "muted small" }, formatDate(vod.startTime || vod.archivedAt)))))));
      empty.hidden = page.items.length > 0;
    } catch (err) {
      empty.hidden = false;
      empty.textContent = err.detail;
    }
  };
  load();
  return { root: h("div", {}, list, empty), reload: load };
}

// ---- the page -----------------------------------------------------------------------------------

export default async function dashboard(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const pick = await pickChannel(user, ctx);
  if (!ctx.isCurrent()) return;
  const { channel } = pick;

  const stops = [];
  const main = h("div", { class: "dash-grid" });
  if (channel) {
    const streamPanel = streamCard(channel);
    stops.push(streamPanel.stop);
    const vods = vodList(channel);
    const vodTimer = setInterval(vods.reload, 10_000);
    stops.push(() => clearInterval(vodTimer));
    const simulcast = simulcastCard(channel);
    stops.push(simulcast.stop);
    const q = `?channel=${encodeURIComponent(channel.id)}`;
    main.replaceChildren(
      h("div", { class: "dash-col" },
        streamPanel.root,
        h("section", { class: "card", "aria-labelledby": "vod-title" }, h("h2", { id: "vod-title" }, t("dash.pastBroadcasts")), vods.root)),
      h("div", { class: "dash-col" },
        encoderCard(channel),
        simulcast.root,
        h("section", { class: "card channel-summary", "aria-labelledby": "channel-title" },
          h("h2", { id: "channel-title" }, t("dash.channel")),
          h("p", {}, h("strong", {}, channel.name), h("span", { class: "muted" }, ` · /streams/${channel.slug}`)),
          h("p", { class: "muted channel-stats" }, tn("home.followers", channel.followerCount, { n: formatNumber(channel.followerCount) }),
            " · ", tn("dash.totalViews", channel.viewCount, { n: formatNumber(channel.viewCount) })),
          h("p", { class: "form-actions" },
            h("a", { class: "btn btn-secondary btn-small", href: `/dashboard/channel${q}` }, t("dash.editChannel")),
            h("a", { class: "btn btn-secondary btn-small", href: `/dashboard/moderation${q}` }, t("dash.moderation")))),
        profileSummary(user)));
  } else {
    main.replaceChildren(createChannelCard(user, (created) => {
      ctx.navigate(`/dashboard?channel=${encodeURIComponent(created.id)}`);
    }), profileSummary(user));
  }

  channelShell(view, t("title.dashboard"), pick, ctx,
    user.onboarded ? null : h("p", { class: "notice" },
      tx("dash.notOnboarded", { link: h("a", { href: "/onboarding" }, t("dash.finishSetup")) })),
    main);

  // keep the summary in step with edits made from the header menu's pages or another tab
  const off = auth.onChange((fresh, reason) => {
    if (reason !== "user" || !fresh) return;
    const old = view.querySelector(".profile-summary");
    if (old) old.replaceWith(profileSummary(fresh));
  });
  return () => {
    off();
    for (const stop of stops) stop();
  };
}

/** /dashboard/new-channel: another channel (up to the server's limit); then its overview. */
export async function newChannel(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const channels = await myChannels();
  if (!ctx.isCurrent()) return;
  const card = createChannelCard(user, (created) => {
    ctx.navigate(`/dashboard?channel=${encodeURIComponent(created.id)}`);
  }, { first: channels.length === 0 });
  dashShell(view, t("title.newChannel"), h("div", { class: "dash-grid" }, h("div", { class: "dash-col" }, card)),
    channels.length ? h("p", { class: "dash-back" }, h("a", { href: "/dashboard" }, t("dash.back"))) : null);
}
