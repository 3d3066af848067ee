// /streams/<slug>: the player (live HLS or a past broadcast with ?vod=<streamId>), stream info,
// the creator card with follow and share, past broadcasts, and the chat (beside the player on
// wide screens, in a drawer on narrow ones; a past broadcast shows its chat replayed in step).
//
// Going live and ending are noticed from the chat socket's stream:status when chat runs, and by
// polling the channel (every 3 s while offline, 10 s while live) in any case.

import { api, ApiError } from "../api.js";
import * as auth from "../auth.js";
import { createChat } from "../chat.js";
import { createPlayer } from "../player.js";
import { createReplayChat } from "../replay.js";
import { subscribePanel } from "../subscribe.js";
import { t, tn, tx } from "../i18n.js";
import { announce, avatar, copyText, formatDate, formatDuration, h, socialLinkList } from "../ui.js";
import { clipList } from "./clip.js";
import { vodList } from "./dashboard.js";
import { formatCount, viewersText } from "./home.js";

const POLL_OFFLINE_MS = 3000;
const POLL_LIVE_MS = 10_000;
// Twitch's default clip length; the API takes 5-60 s
const CLIP_SECONDS = 30;

function notFound(view, slug) {
  view.append(h("section", { class: "container narrow page" },
    h("h1", {}, t("stream.notFound")),
    h("p", { class: "muted" }, t("stream.notFoundText", { path: `/streams/${slug}` })),
    h("p", {}, h("a", { class: "btn btn-secondary", href: "/" }, t("stream.seeWhoIsLive")))));
}

export default async function stream(view, ctx) {
  const slug = ctx.params.slug;
  let channel;
  try {
    channel = await api.get(`/api/channels/${encodeURIComponent(slug)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 422)) {
      if (ctx.isCurrent()) notFound(view, slug);
      return undefined;
    }
    throw err;
  }
  if (!ctx.isCurrent()) return undefined;
  ctx.setTitle(channel.name);
  const me = auth.isLoggedIn() ? auth.currentUser() : null;
  const vodId = ctx.query.get("vod");

  let mode = null; // "live" | "offline" | "vod"
  let liveStream = null;
  let pollTimer = null;
  let stopped = false;

  // ---- the stage: player or offline panel ----
  const player = createPlayer({ title: channel.name });
  const offline = h("div", { class: "offline-panel", hidden: true },
    channel.banner ? h("img", { class: "offline-banner", src: channel.banner, alt: "" }) : null,
    h("div", { class: "offline-text" },
      avatar({ ...channel.creator, avatar: channel.avatar || (channel.creator && channel.creator.avatar) }, 64),
      h("p", { class: "offline-title" }, t("stream.offline", { name: channel.name })),
      h("p", { class: "muted" }, t("stream.offlineHint"))));
  const stage = h("div", { class: "stage" }, player.root, offline);

  // ---- info ----
  const title = h("h1", { class: "stream-title" }, channel.name);
  const liveBadge = h("span", { class: "live-pill", hidden: true }, t("home.live"));
  const viewers = h("span", { class: "stat", hidden: true, "aria-live": "polite" });
  const uptime = h("span", { class: "stat muted" });
  const vodNote = h("p", { class: "notice vod-note", hidden: true });
  const meta = h("div", { class: "stream-meta" }, liveBadge, viewers, uptime,
    channel.category ? h("span", { class: "tag" }, channel.category) : null,
    (channel.tags || []).map((tag) => h("span", { class: "tag tag-plain" }, tag)));

  // ---- creator card ----
  const followers = h("span", { class: "muted" });
  const showFollowers = () => { followers.textContent = tn("home.followers", channel.followerCount, { n: formatCount(channel.followerCount) }); };
  showFollowers();
  let follow;
  if (!me) {
    follow = h("a", { class: "btn btn-primary btn-small", href: `/auth/login?next=${encodeURIComponent(location.pathname)}` }, t("user.follow"));
  } else if (me.id === channel.ownerId) {
    follow = h("a", { class: "btn btn-secondary btn-small", href: "/dashboard" }, t("nav.dashboard"));
  } else {
    follow = h("button", { type: "button", class: "btn btn-small", "aria-pressed": String(Boolean(channel.isFollowing)) });
    const paint = () => {
      follow.textContent = channel.isFollowing ? t("user.following") : t("user.follow");
      follow.className = `btn btn-small ${channel.isFollowing ? "btn-secondary" : "btn-primary"}`;
      follow.setAttribute("aria-pressed", String(Boolean(channel.isFollowing)));
      follow.setAttribute("aria-label", channel.isFollowing ? t("stream.unfollowLabel", { name: channel.name }) : t("stream.followLabel", { name: channel.name }));
    };
    paint();
    follow.addEventListener("click", async () => {
      const next = !channel.isFollowing;
      follow.disabled = true;
      try {
        const path = `/api/channels/${encodeURIComponent(channel.id)}/follow`;
        if (next) await api.post(path);
        else await api.del(path);
        channel.isFollowing = next;
        channel.followerCount = Math.max(0, channel.followerCount + (next ? 1 : -1));
        paint();
        showFollowers();
        announce(next ? t("user.nowFollowing", { name: channel.name }) : t("user.noLongerFollowing", { name: channel.name }));
      } catch (err) {
        announce(err.detail);
      } finally {
        follow.disabled = false;
      }
    });
  }
  const shareStatus = h("span", { class: "share-status", role: "status", "aria-live": "polite" });
  const share = h("button", { type: "button", class: "btn btn-secondary btn-small" }, t("stream.share"));
  share.addEventListener("click", async () => {
    const url = `${location.origin}/streams/${encodeURIComponent(channel.slug)}`;
    if (navigator.share && matchMedia("(pointer: coarse)").matches) {
      try {
        await navigator.share({ title: channel.name, url });
        return;
      } catch {
        /* cancelled: fall back to copying */
      }
    }
    shareStatus.textContent = (await copyText(url)) ? t("stream.linkCopied") : url;
  });
  // a clip of the last CLIP_SECONDS: of the live window, or of the recording up to where the
  // viewer is; the clip page then shows it being cut and plays it when ready
  const clipButton = me
    ? h("button", { type: "button", class: "btn btn-secondary btn-small clip-make", hidden: true,
      title: t("clip.makeHint", { n: CLIP_SECONDS }) }, t("clip.make"))
    : h("a", { class: "btn btn-secondary btn-small clip-make", hidden: true,
      href: `/auth/login?next=${encodeURIComponent(location.pathname + location.search)}` }, t("clip.make"));
  if (me) {
    clipButton.addEventListener("click", async () => {
      const body = mode === "vod"
        ? { streamId: vodId, durationSeconds: CLIP_SECONDS,
          startSeconds: Math.max(0, Math.floor((player.video.currentTime || 0) - CLIP_SECONDS)) }
        : { streamId: liveStream && liveStream.id, durationSeconds: CLIP_SECONDS };
      if (!body.streamId) return;
      clipButton.disabled = true;
      try {
        const made = await api.post("/api/clips", body);
        ctx.navigate(`/clips/${encodeURIComponent(made.id)}`);
      } catch (err) {
        announce(err.detail || t("common.tryAgain"));
      } finally {
        clipButton.disabled = false;
      }
    });
  }
  const creator = channel.creator || {};
  const creatorLinks = h("div", { class: "creator-links" });
  const creatorCard = h("section", { class: "creator-card", "aria-label": t("stream.aboutCreator") },
    avatar({ ...creator, avatar: channel.avatar || creator.avatar }, 56, ""),
    h("div", { class: "creator-text" },
      h("p", { class: "creator-name" }, creator.username
        ? h("a", { href: `/users/${encodeURIComponent(creator.username)}` }, creator.displayName || creator.username)
        : channel.name),
      h("p", { class: "small" }, creator.username ? h("span", { class: "muted" }, `@${creator.username} · `) : null, followers),
      creatorLinks),
    h("div", { class: "creator-actions" }, follow, share, clipButton, shareStatus));
  if (creator.id) {
    // the creator's social links live with the user (auth), not the channel; the page does not wait for them
    api.get(`/api/users/${encodeURIComponent(creator.id)}`, { auth: false }).then((profile) => {
      const list = socialLinkList(profile.socialLinks, t("user.links"));
      if (list && ctx.isCurrent()) creatorLinks.replaceChildren(list);
    }).catch(() => { /* no links shown; the rest of the page stands */ });
  }

  // subscribing: beside the creator card, loaded without holding up the page
  const subscription = subscribePanel(channel, me);
  if (subscription) subscription.load();

  const vods = vodList(channel, { limit: 8 });
  const clips = clipList(channel, { limit: 8 });
  const about = h("section", { class: "about", "aria-labelledby": "about-title" },
    h("h2", { id: "about-title" }, t("stream.about", { name: channel.name })),
    channel.description ? h("p", { class: "bio" }, channel.description) : h("p", { class: "muted" }, t("stream.noDescription")));

  // ---- chat (beside the player, or a drawer): a recording gets its stream's chat replayed ----
  const chat = vodId ? createReplayChat({ streamId: vodId }) : createChat({
    channel,
    onViewers(count) {
      if (mode === "live") setViewers(count);
    },
    onStatus(status) {
      if ((status === "LIVE") !== (mode === "live")) refresh();
    },
  });
  const drawerButton = h("button", { type: "button", class: "btn btn-primary chat-toggle", "aria-expanded": "false", "aria-controls": "chat-drawer" }, t("chat.title"));
  const aside = h("aside", { class: "watch-chat", id: "chat-drawer", "aria-label": t("chat.title"), dataset: { open: "false" } }, chat.root);
  const setDrawer = (open) => {
    aside.dataset.open = String(open);
    drawerButton.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("drawer-open", open);
    if (open) chat.focusComposer();
    else drawerButton.focus();
  };
  drawerButton.addEventListener("click", () => setDrawer(aside.dataset.open !== "true"));
  chat.closeButton.addEventListener("click", () => setDrawer(false));
  aside.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && aside.dataset.open === "true" && !e.target.closest("dialog")) setDrawer(false);
  });

  view.append(h("div", { class: "watch" },
    h("div", { class: "watch-main" }, stage,
      h("div", { class: "watch-info container-pad" }, vodNote, title, meta, creatorCard,
        subscription ? subscription.root : null, about,
        h("section", { class: "past", "aria-labelledby": "past-title" }, h("h2", { id: "past-title" }, t("dash.pastBroadcasts")), vods.root),
        h("section", { class: "clips", "aria-labelledby": "clips-title" }, h("h2", { id: "clips-title" }, t("clip.clips")), clips.root))),
    aside, drawerButton));

  // ---- state ----
  function setViewers(count) {
    viewers.textContent = viewersText(count);
  }
  let uptimeTimer = setInterval(() => {
    if (mode === "live" && liveStream && liveStream.startTime) uptime.textContent = formatDuration((Date.now() - Date.parse(liveStream.startTime)) / 1000);
    else if (mode !== "vod") uptime.textContent = "";
  }, 1000);

  function showOffline() {
    if (mode === "offline") return;
    const wasLive = mode === "live";
    mode = "offline";
    liveStream = null;
    player.stop();
    player.root.hidden = true;
    offline.hidden = false;
    liveBadge.hidden = true;
    viewers.hidden = true;
    uptime.textContent = "";
    title.textContent = channel.name;
    stage.dataset.mode = "offline";
    clipButton.hidden = true;
    if (wasLive) {
      announce(t("stream.ended", { name: channel.name }));
      vods.reload();
      setTimeout(vods.reload, 5000);
    }
  }

  async function showLive(s) {
    const sameStream = mode === "live" && liveStream && liveStream.id === s.id;
    liveStream = s;
    title.textContent = s.title || channel.name;
    setViewers(s.viewerCount || channel.viewerCount || 0);
    liveBadge.hidden = false;
    viewers.hidden = false;
    if (sameStream) return;
    const wasOffline = mode === "offline";
    mode = "live";
    stage.dataset.mode = "live";
    clipButton.hidden = false;
    offline.hidden = true;
    player.root.hidden = false;
    if (wasOffline) announce(t("stream.nowLive", { name: channel.name }));
    await player.playLive(s.hlsUrl);
  }

  async function refresh() {
    if (stopped || mode === "vod") return;
    clearTimeout(pollTimer);
    try {
      const fresh = await api.get(`/api/channels/${encodeURIComponent(channel.id)}`);
      Object.assign(channel, { isLive: fresh.isLive, liveStreamId: fresh.liveStreamId, viewerCount: fresh.viewerCount, followerCount: fresh.followerCount });
      showFollowers();
      if (fresh.isLive && fresh.liveStreamId) {
        const s = await api.get(`/api/streams/${encodeURIComponent(fresh.liveStreamId)}`);
        if (s.status === "LIVE" && s.hlsUrl) await showLive(s);
        else showOffline();
      } else {
        showOffline();
      }
    } catch {
      /* transient: next tick */
    }
    if (!stopped) pollTimer = setTimeout(refresh, mode === "live" ? POLL_LIVE_MS : POLL_OFFLINE_MS);
  }

  if (vodId) {
    mode = "vod";
    stage.dataset.mode = "vod";
    try {
      const s = await api.get(`/api/streams/${encodeURIComponent(vodId)}`);
      if (s.channelId !== channel.id || !s.vodUrl) throw new Error("not a recording of this channel");
      title.textContent = s.title || channel.name;
      uptime.textContent = s.duration != null ? formatDuration(s.duration) : "";
      vodNote.hidden = false;
      vodNote.replaceChildren(...tx("stream.vodFrom", { date: formatDate(s.startTime || s.createdAt),
        link: h("a", { href: `/streams/${encodeURIComponent(channel.slug)}` }, channel.isLive ? t("stream.watchLive") : t("stream.backToChannel")) }));
      offline.hidden = true;
      clipButton.hidden = false;
      player.playVod(s.vodUrl);
      chat.attach(player.video);
    } catch {
      chat.unavailable();
      vodNote.hidden = false;
      vodNote.textContent = t("stream.vodMissing");
      player.root.hidden = true;
      offline.hidden = false;
    }
  } else {
    await refresh();
  }

  return () => {
    stopped = true;
    clearTimeout(pollTimer);
    clearInterval(uptimeTimer);
    uptimeTimer = null;
    chat.destroy();
    player.destroy();
    document.body.classList.remove("drawer-open");
  };
}
