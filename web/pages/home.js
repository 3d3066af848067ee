// Home: the directory. Live channels first (thumbnail, title, viewers, category), then the others.

import { api } from "../api.js";
import * as auth from "../auth.js";
import { formatCompact, t, tn } from "../i18n.js";
import { avatar, h } from "../ui.js";

const REFRESH_MS = 15_000;

/** 950, 1.2K, 12K, 1.5M (en); 950, 1234, 12.345, 1,5 Mio. (de) */
export function formatCount(n) {
  return formatCompact(n);
}

export function viewersText(n) {
  return tn("home.viewers", Number(n) || 0, { n: formatCount(n) });
}

/** Thumbnail of the live stream (refreshed by the ingest), else the banner, else a gradient. */
function thumb(channel, stream) {
  const src = (stream && stream.thumbnailUrl) || channel.banner;
  const box = h("div", { class: "thumb" });
  if (src) {
    const img = h("img", { src, alt: "", loading: "lazy", decoding: "async", width: 320, height: 180 });
    img.addEventListener("error", () => img.remove());
    box.append(img);
  }
  if (channel.isLive) {
    box.append(h("span", { class: "live-pill" }, t("home.live")),
      h("span", { class: "thumb-viewers" }, viewersText(channel.viewerCount)));
  }
  return box;
}

export function channelCard(channel, stream) {
  const title = (stream && channel.isLive && stream.title) || channel.name;
  const creator = channel.creator || {};
  return h("li", { class: "channel-card" },
    h("a", { class: "card-link", href: `/streams/${encodeURIComponent(channel.slug)}` },
      thumb(channel, stream),
      h("div", { class: "card-body" },
        avatar({ ...creator, avatar: channel.avatar || creator.avatar }, 36),
        h("div", { class: "card-text" },
          h("h3", { class: "card-title" }, title),
          h("p", { class: "card-meta" }, title !== channel.name ? channel.name : creator.username ? `@${creator.username}` : ""),
          h("p", { class: "card-meta" },
            channel.category ? h("span", { class: "tag" }, channel.category) : null,
            channel.isLive ? null : h("span", { class: "muted" }, tn("home.followers", Number(channel.followerCount) || 0, { n: formatCount(channel.followerCount) })))))));
}

async function liveStreams(channels) {
  const out = new Map();
  await Promise.all(channels.filter((c) => c.isLive && c.liveStreamId).map(async (c) => {
    try {
      out.set(c.id, await api.get(`/api/streams/${encodeURIComponent(c.liveStreamId)}`, { auth: false }));
    } catch {
      /* the card falls back to the channel's name and banner */
    }
  }));
  return out;
}

export default async function home(view, ctx) {
  const loggedIn = auth.isLoggedIn();
  const liveList = h("ul", { class: "channel-grid", role: "list", "aria-labelledby": "live-title" });
  const otherList = h("ul", { class: "channel-grid", role: "list", "aria-labelledby": "others-title" });
  const liveEmpty = h("p", { class: "empty muted", hidden: true }, t("home.liveEmpty"));
  const othersSection = h("section", { class: "container section", "aria-labelledby": "others-title", hidden: true },
    h("div", { class: "section-head" }, h("h2", { id: "others-title" }, t("home.others"))), otherList);
  const status = h("p", { class: "form-status", role: "status" });

  view.append(
    h("section", { class: "hero hero-compact", "aria-labelledby": "hero-title" },
      h("div", { class: "container hero-inner" },
        h("h1", { id: "hero-title" }, t("home.heroTitle")),
        h("p", { class: "lead" }, t("home.heroLead")),
        loggedIn ? null : h("div", { class: "actions" },
          h("a", { class: "btn btn-primary", href: "/auth/register" }, t("home.createAccount")),
          h("a", { class: "btn btn-secondary", href: "/auth/login" }, t("home.login"))))),
    h("section", { class: "container section", "aria-labelledby": "live-title" },
      h("div", { class: "section-head" }, h("h2", { id: "live-title" }, t("home.liveChannels"))),
      liveList, liveEmpty, status),
    othersSection);

  const load = async () => {
    try {
      const [live, all] = await Promise.all([
        api.get("/api/channels?live=true&limit=48"),
        api.get("/api/channels?live=false&limit=48"),
      ]);
      const streams = await liveStreams(live.items);
      if (!ctx.isCurrent()) return;
      liveList.replaceChildren(...live.items.map((c) => channelCard(c, streams.get(c.id))));
      liveEmpty.hidden = live.items.length > 0;
      otherList.replaceChildren(...all.items.map((c) => channelCard(c)));
      othersSection.hidden = all.items.length === 0;
      status.textContent = "";
    } catch (err) {
      if (ctx.isCurrent()) status.textContent = err.detail || t("home.loadFailed");
    }
  };
  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
