// /dashboard: the creator's overview of one of their channels (chosen with the channel switcher and
// kept in the URL as ?channel=<id>, so a reload or a shared link keeps it). Without a channel:
// create one; /dashboard/new-channel adds another. With one: stream status and viewer count
// (polled every 2 s: a chat socket here would count the creator as a viewer), Go live and End
// stream, the encoder settings (RTMP URL, stream key hidden by default, copy, rotate), simulcast
// destinations with their live state, the past
// broadcasts, follower and view counts and the profile summary.

import { api } from "../api.js";
import { t } from "../i18n.js";
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
      c.isLive ? `${c.name} (live)` : c.name)));
  select.addEventListener("change", () => {
    const query = new URLSearchParams(location.search);
    query.set("channel", select.value);
    ctx.navigate(`${location.pathname}?${query}`);
  });
  return h("div", { class: "channel-switcher" },
    h("label", { for: id }, "Your channel"), select,
    h("a", { class: "btn btn-secondary btn-small", href: "/dashboard/new-channel" }, "New channel"),
    pick.unknown ? h("p", { class: "notice", role: "status" },
      "The channel in the address is not one of yours; showing ", h("strong", {}, pick.channel.name), " instead.") : null);
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
  return h("p", { class: "notice" }, "You don't have a channel yet. ", h("a", { href: "/dashboard" }, "Create it on the overview"), ".");
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
    user.bio ? h("p", { class: "bio" }, user.bio) : h("p", { class: "muted" }, "No bio yet."),
    links.length
      ? h("ul", { class: "social-links", role: "list", "aria-label": "Social links" },
        links.map(([name, url]) => h("li", {},
          h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, name,
            h("span", { class: "visually-hidden" }, " (opens in a new tab)")))))
      : null,
    since && !Number.isNaN(since.getTime())
      ? h("p", { class: "muted small" }, "Member since ",
        h("time", { datetime: user.createdAt }, since.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" })))
      : null,
    h("p", {}, h("a", { class: "btn btn-secondary", href: "/dashboard/profile" }, "Edit profile")));
}

// ---- create a channel ----------------------------------------------------------------------

const CHANNEL_WORDS = {
  slug: { string_pattern_mismatch: "Use 3-40 lower-case letters, digits and “-”, starting and ending with a letter or digit.",
    conflict: "This address is taken. Choose another one.", "*": null },
  category: { string_pattern_mismatch: "Use lower-case letters, digits and “-”, like “just-chatting”." },
};

/** The username as a channel address (usernames are unique, so this one is usually free). */
function suggestedSlug(username) {
  const slug = String(username || "").replace(/_/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  return /^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$/.test(slug) ? slug : "";
}

function createChannelCard(user, onCreated, { first = true } = {}) {
  const fields = {
    name: field({ name: "name", label: "Channel name", required: true, maxLength: 80, value: first ? user.displayName || user.username : "" }),
    slug: field({ name: "slug", label: "Address", optional: true, maxLength: 40, value: first ? suggestedSlug(user.username) : "",
      hint: "Your page will be /streams/<address>. Left empty, it is made from the name." }),
    category: field({ name: "category", label: "Category", optional: true, maxLength: 40, hint: "For example gaming, music or just-chatting." }),
    description: field({ name: "description", label: "Description", optional: true, multiline: true, rows: 3, maxLength: 2000 }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "create-title" },
    ...Object.values(fields).map((f) => f.root), status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Create channel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    status.clear();
    if (!fields.name.input.value.trim()) {
      fields.name.setError("Give your channel a name.");
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
      announce("Your channel is created.");
      onCreated(channel);
    } catch (err) {
      setBusy(form, false);
      // a 409 is a taken address (on the slug field) or the channel limit (no field: its detail says so)
      const { shown } = showFieldErrors(fields, err, CHANNEL_WORDS);
      status.set(shown ? "Please fix the highlighted fields." : err.detail, "error");
      focusFirstInvalid(form);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, first ? "Create your channel" : "Create another channel"),
    h("p", { class: "muted" }, first
      ? "You can change all of this later, and add more channels from the dashboard."
      : "Each channel has its own stream key, chat settings, moderators and past broadcasts."),
    form);
}

// ---- encoder settings: RTMP URL and stream key ----------------------------------------------

function secretRow({ label, value, secret, onCopy }) {
  const spoken = /^[A-Z]{2,}/.test(label) ? label : label.toLowerCase(); // "RTMP URL" keeps its capitals
  const id = uid("secret");
  const input = h("input", { id, type: secret ? "password" : "text", readonly: true, class: "mono", spellcheck: "false", autocomplete: "off" });
  input.value = value;
  const copy = h("button", { type: "button", class: "btn btn-secondary btn-small" }, "Copy");
  copy.setAttribute("aria-label", `Copy ${spoken}`);
  copy.addEventListener("click", () => onCopy(input.value, label));
  let toggle = null;
  if (secret) {
    toggle = h("button", { type: "button", class: "btn btn-secondary btn-small", "aria-pressed": "false", "aria-controls": id,
      "aria-label": `Show ${spoken}` }, "Show");
    toggle.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      toggle.textContent = show ? "Hide" : "Show";
      toggle.setAttribute("aria-pressed", String(show));
      toggle.setAttribute("aria-label", `${show ? "Hide" : "Show"} ${spoken}`);
    });
  }
  const root = h("div", { class: "field" }, h("label", { for: id }, label),
    h("div", { class: "input-with-action secret-row" }, input, toggle, copy));
  return { root, input, hide() { if (input.type === "text" && toggle) toggle.click(); } };
}

function encoderCard(channel) {
  const status = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "encoder-body" }, h("p", { class: "muted" }, "Loading…"));
  const say = (text, kind = "info") => { status.dataset.kind = kind; status.textContent = text; };
  const onCopy = async (value, label) => {
    if (await copyText(value)) say(`${label} copied to the clipboard.`, "success");
    else say(`Could not copy. Select the ${label} field and copy it by hand.`, "error");
  };

  const PROVIDERS = { local: "This platform", mux: "Mux", cloudflare: "Cloudflare Stream" };
  const providerChoice = (current) => {
    const id = uid("provider");
    const select = h("select", { id, name: "provider" },
      ...Object.entries(PROVIDERS).map(([value, label]) => h("option", { value }, label)));
    select.value = current;
    const apply = h("button", { type: "button", class: "btn btn-secondary btn-small" }, "Switch");
    apply.addEventListener("click", async () => {
      if (select.value === current) return;
      const ok = await confirmDialog({
        title: `Send your video to ${PROVIDERS[select.value]}?`,
        text: "Your encoder needs the new server URL and key shown after the switch; the old ones stop working.",
        confirmLabel: "Switch",
      });
      if (!ok) return;
      apply.disabled = true;
      say(`Switching to ${PROVIDERS[select.value]}…`);
      try {
        await api.put(`/api/channels/${encodeURIComponent(channel.id)}`, { provider: select.value });
        render(await api.get(`/api/channels/${encodeURIComponent(channel.id)}/stream-key`));
        say(`Your video now goes to ${PROVIDERS[select.value]}.`, "success");
      } catch (err) {
        apply.disabled = false;
        select.value = current;
        say(err.detail, "error");
      }
    });
    return h("div", { class: "field" }, h("label", { for: id }, "Video provider"),
      h("div", { class: "input-with-action" }, select, apply),
      h("p", { class: "hint" }, "Where your encoder sends video: this platform's ingest, or your Mux / Cloudflare Stream account."));
  };

  const render = (keys) => {
    const provider = keys.provider || "local";
    const hosted = provider !== "local";
    const rtmp = secretRow({ label: hosted ? "RTMPS URL" : "RTMP URL", value: keys.rtmpUrl, secret: false, onCopy });
    const key = secretRow({ label: "Stream key", value: keys.streamKey, secret: true, onCopy });
    // an SRT URL carries the key or the provider's passphrase: as secret as the key
    const srt = keys.srtUrl ? secretRow({ label: "SRT URL", value: keys.srtUrl, secret: true, onCopy }) : null;
    const playback = keys.playbackUrl ? secretRow({ label: "Playback URL", value: keys.playbackUrl, secret: false, onCopy }) : null;
    const rotate = h("button", { type: "button", class: "btn btn-danger-ghost btn-small" }, "Rotate key");
    rotate.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: "Rotate the stream key?",
        text: "The current key stops working at once and a live broadcast using it is cut. Update your encoder with the new key.",
        confirmLabel: "Rotate key", danger: true,
      });
      if (!ok) return;
      rotate.disabled = true;
      try {
        const fresh = await api.post(`/api/channels/${encodeURIComponent(channel.id)}/stream-key/rotate`);
        render(fresh);
        say("A new stream key is ready. The old one no longer works.", "success");
      } catch (err) {
        rotate.disabled = false;
        say(err.detail, "error");
      }
    });
    body.replaceChildren(providerChoice(provider), rtmp.root, key.root, ...(srt ? [srt.root] : []),
      ...(playback ? [playback.root] : []),
      h("p", { class: "hint" }, hosted
        ? `Your video goes to ${PROVIDERS[provider]}, which serves it to viewers. In OBS: Settings → Stream → Service “Custom”, then paste the URL and the key.`
        : "In OBS: Settings → Stream → Service “Custom”, then paste the URL and the key. Never share the key."),
      ...(srt && !hosted ? [h("p", { class: "hint" }, "Or over SRT (steadier on lossy networks): paste the whole SRT URL as the Server and leave the Stream Key empty; the key is in the URL.")] : []),
      // the first HLS segment ends at the encoder's second key frame: this interval is the start-up delay
      h("p", { class: "hint" }, "For the fastest start, set a key frame every second (OBS: Settings → Output → Keyframe Interval 1)."),
      h("div", { class: "form-actions" }, rotate));
  };

  api.get(`/api/channels/${encodeURIComponent(channel.id)}/stream-key`)
    .then(render)
    .catch((err) => body.replaceChildren(h("p", { class: "field-error" }, err.detail)));

  return h("section", { class: "card", "aria-labelledby": "encoder-title" },
    h("h2", { id: "encoder-title" }, "Encoder settings"), body, status);
}

// ---- simulcast destinations ---------------------------------------------------------------------

const SIMULCAST_WORDS = { idle: "Idle", connecting: "Connecting…", live: "Live", failed: "Failed" };

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
    const state = h("span", { class: "status-badge destination-state", "data-state": d.state }, SIMULCAST_WORDS[d.state] || d.state);
    const toggle = h("button", { type: "button", class: "btn btn-secondary btn-small" }, d.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try { await api.put(`${base}/${encodeURIComponent(d.id)}`, { enabled: !d.enabled }); await load(); }
      catch (err) { status.set(err.detail, "error"); toggle.disabled = false; }
    });
    const remove = h("button", { type: "button", class: "btn btn-danger-ghost btn-small" }, "Remove");
    remove.addEventListener("click", async () => {
      const ok = await confirmDialog({ title: `Remove ${d.name}?`, text: "The stream is no longer sent there.",
        confirmLabel: "Remove", danger: true });
      if (!ok) return;
      try { await api.del(`${base}/${encodeURIComponent(d.id)}`); await load(); status.set(`${d.name} removed.`, "success"); }
      catch (err) { status.set(err.detail, "error"); }
    });
    return h("li", { class: "destination", "data-destination-id": d.id },
      h("p", {}, h("strong", {}, d.name), " ", state, d.enabled ? null : h("span", { class: "muted" }, " (disabled)")),
      h("p", { class: "muted" }, `${d.url} · key …${d.streamKeyLast4}`),
      d.lastError ? h("p", { class: "field-error destination-error" }, d.lastError) : null,
      h("p", { class: "form-actions" }, toggle, remove));
  };

  async function load() {
    try {
      const { items } = await api.get(base);
      list.replaceChildren(...(items.length ? items.map(row) : [h("li", { class: "muted" }, "No destinations yet.")]));
    } catch (err) {
      list.replaceChildren(h("li", { class: "field-error" }, err.detail));
    }
  }

  const fields = {
    name: field({ name: "name", label: "Name", required: true, maxLength: 80, hint: "e.g. YouTube" }),
    url: field({ name: "url", label: "Server URL", required: true, maxLength: 512, hint: "rtmp:// or rtmps://, e.g. rtmp://a.rtmp.youtube.com/live2" }),
    streamKey: field({ name: "streamKey", label: "Destination stream key", type: "password", required: true, maxLength: 512,
      autocomplete: "off", hint: "Stored encrypted; only its last 4 characters are shown again." }),
  };
  const form = h("form", { class: "destination-form", novalidate: true },
    fields.name.root, fields.url.root, fields.streamKey.root,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-small" }, "Add destination")),
    status.el);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    setBusy(form, true);
    try {
      const created = await api.post(base, { name: fields.name.input.value, url: fields.url.input.value,
        streamKey: fields.streamKey.input.value, enabled: true });
      for (const f of Object.values(fields)) f.input.value = "";
      status.set(`${created.name} added.`, "success");
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
      h("h2", { id: "simulcast-title" }, "Simulcast"),
      h("p", { class: "hint" }, "While you are live, your stream is also sent, unchanged, to each enabled destination."),
      list, form),
    stop() { stopped = true; clearTimeout(timer); },
  };
}

// ---- stream status, Go live, End stream -------------------------------------------------------

const STATUS_WORDS = {
  OFFLINE: "Offline", LIVE: "Live", ENDING: "Ending", ARCHIVED: "Ended",
};

function streamCard(channel) {
  let stream = null; // the current session: OFFLINE (prepared), LIVE or ENDING
  let timer = null;
  let stopped = false;
  let lastAnnounced = null;

  const badge = h("span", { class: "status-badge", "data-status": "OFFLINE" }, "Offline");
  const viewers = h("span", { class: "stat" }, "0 viewers");
  const uptime = h("span", { class: "stat muted" });
  const info = h("p", { class: "muted stream-hint" });
  const liveRegion = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const status = formStatus();

  const fields = {
    title: field({ name: "title", label: "Title", maxLength: 140, required: true, hint: "What viewers see in the directory." }),
    description: field({ name: "description", label: "Description", optional: true, multiline: true, rows: 2, maxLength: 2000 }),
  };
  const goLive = h("button", { type: "submit", class: "btn btn-primary" }, "Go live");
  const end = h("button", { type: "button", class: "btn btn-danger", hidden: true }, "End stream");
  const form = h("form", { class: "form", novalidate: true, "aria-label": "Go live" },
    fields.title.root, fields.description.root, status.el, h("div", { class: "form-actions" }, goLive, end));

  const show = () => {
    const s = stream ? stream.status : "OFFLINE";
    const live = s === "LIVE";
    badge.dataset.status = s;
    badge.textContent = STATUS_WORDS[s] || s;
    viewers.textContent = viewersText(live ? stream.viewerCount : 0);
    viewers.hidden = !live;
    uptime.textContent = live && stream.startTime ? `Up ${formatDuration((Date.now() - Date.parse(stream.startTime)) / 1000)}` : "";
    end.hidden = !(stream && (s === "LIVE" || s === "OFFLINE"));
    goLive.textContent = stream && s === "OFFLINE" ? "Update title" : "Go live";
    goLive.hidden = s === "LIVE" || s === "ENDING";
    info.textContent = !stream ? "Set a title and press Go live, then start your encoder."
      : s === "OFFLINE" ? "Ready: start your encoder with the stream key below. The stream goes live as soon as it connects."
        : s === "LIVE" ? "You are live." : s === "ENDING" ? "Ending: the recording is being prepared." : "";
    if (lastAnnounced !== s) {
      if (lastAnnounced !== null) {
        liveRegion.textContent = `Stream status: ${badge.textContent}.`;
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
      fields.title.setError("Give your stream a title.");
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
      status.set(stream.status === "LIVE" ? "You are live." : "Ready. Start your encoder to go live.", "success");
      show();
    } catch (err) {
      const { shown } = showFieldErrors(fields, err);
      status.set(shown ? "Please fix the highlighted fields." : err.detail, "error");
    } finally {
      setBusy(form, false);
    }
  });

  end.addEventListener("click", async () => {
    if (!stream) return;
    const ok = await confirmDialog({ title: "End the stream?", text: "Viewers see the offline screen and the recording is saved as a past broadcast.",
      confirmLabel: "End stream", danger: true });
    if (!ok) return;
    end.disabled = true;
    try {
      stream = await api.post(`/api/streams/${encodeURIComponent(stream.id)}/end`);
      status.set("Stream ended. The recording appears under Past broadcasts when it is ready.", "success");
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
    h("div", { class: "section-head" }, h("h2", { id: "stream-title" }, "Stream"), badge, viewers, uptime),
    info, liveRegion,
    h("p", {}, h("a", { href: `/streams/${encodeURIComponent(channel.slug)}` }, "Open your stream page")),
    form);
  return { root, stop: () => { stopped = true; clearTimeout(timer); } };
}

// ---- past broadcasts --------------------------------------------------------------------------

export function vodList(channel, { linkTo = (vod) => `/streams/${encodeURIComponent(channel.slug)}?vod=${encodeURIComponent(vod.id)}`, limit = 12 } = {}) {
  const list = h("ul", { class: "vod-list", role: "list" });
  const empty = h("p", { class: "muted", hidden: true }, "No past broadcasts yet. Every stream is recorded and listed here when it ends.");
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
        h("section", { class: "card", "aria-labelledby": "vod-title" }, h("h2", { id: "vod-title" }, "Past broadcasts"), vods.root)),
      h("div", { class: "dash-col" },
        encoderCard(channel),
        simulcast.root,
        h("section", { class: "card channel-summary", "aria-labelledby": "channel-title" },
          h("h2", { id: "channel-title" }, "Channel"),
          h("p", {}, h("strong", {}, channel.name), h("span", { class: "muted" }, ` · /streams/${channel.slug}`)),
          h("p", { class: "muted channel-stats" }, `${channel.followerCount} followers · ${channel.viewCount} total views`),
          h("p", { class: "form-actions" },
            h("a", { class: "btn btn-secondary btn-small", href: `/dashboard/channel${q}` }, "Edit channel"),
            h("a", { class: "btn btn-secondary btn-small", href: `/dashboard/moderation${q}` }, t("dash.moderation")))),
        profileSummary(user)));
  } else {
    main.replaceChildren(createChannelCard(user, (created) => {
      ctx.navigate(`/dashboard?channel=${encodeURIComponent(created.id)}`);
    }), profileSummary(user));
  }

  channelShell(view, "Creator dashboard", pick, ctx,
    user.onboarded ? null : h("p", { class: "notice" }, "Your profile is not finished yet. ",
      h("a", { href: "/onboarding" }, "Finish setting it up")),
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
  dashShell(view, "New channel", h("div", { class: "dash-grid" }, h("div", { class: "dash-col" }, card)),
    channels.length ? h("p", { class: "dash-back" }, h("a", { href: "/dashboard" }, "Back to the dashboard")) : null);
}
