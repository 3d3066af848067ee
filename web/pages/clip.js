// /clips/<id>: one clip with a player, its channel and stream, a share control, and (for its
// creator, the channel's owner or a moderator) a delete button. A clip still being cut is polled
// until it is ready or failed.

import { api, ApiError } from "../api.js";
import * as auth from "../auth.js";
import { createPlayer } from "../player.js";
import { formatNumber, t } from "../i18n.js";
import { copyText, formatDate, h } from "../ui.js";

const POLL_MS = 1500;

/** The channel's ready clips as a list of links (the channel page shows it). */
export function clipList(channel, { limit = 12 } = {}) {
  const list = h("ul", { class: "vod-list clip-list", role: "list" });
  const empty = h("p", { class: "muted", hidden: true }, t("clip.none"));
  const load = async () => {
    try {
      const page = await api.get(`/api/channels/${encodeURIComponent(channel.id)}/clips?limit=${limit}`);
      list.replaceChildren(...page.items.map((clip) => h("li", { class: "vod-item" },
        h("a", { class: "vod-link", href: `/clips/${encodeURIComponent(clip.id)}` },
          h("div", { class: "vod-thumb" },
            clip.thumbnailUrl ? h("img", { src: clip.thumbnailUrl, alt: "", loading: "lazy", width: 160, height: 90 }) : null,
            h("span", { class: "vod-duration" }, t("clip.seconds", { n: formatNumber(clip.durationSeconds) }))),
          h("span", { class: "vod-text" },
            h("span", { class: "vod-title" }, clip.title || t("clip.untitled")),
            h("span", { class: "muted small" }, formatDate(clip.createdAt)))))));
      empty.hidden = page.items.length > 0;
    } catch (err) {
      empty.hidden = false;
      empty.textContent = err.detail || t("clip.loadFailed");
    }
  };
  load();
  return { root: h("div", {}, list, empty), reload: load };
}

export default async function clipPage(view, ctx) {
  const id = ctx.params.id;
  let clip;
  try {
    clip = await api.get(`/api/clips/${encodeURIComponent(id)}`);
  } catch (err) {
    if (!ctx.isCurrent()) return;
    if (err instanceof ApiError && err.status === 404) {
      view.append(h("section", { class: "container narrow page" },
        h("h1", {}, t("clip.notFound")),
        h("p", { class: "muted" }, t("clip.notFoundText")),
        h("p", {}, h("a", { class: "btn btn-secondary", href: "/" }, t("stream.seeWhoIsLive")))));
      return;
    }
    throw err;
  }
  if (!ctx.isCurrent()) return;

  const title = h("h1", { class: "clip-title" }, clip.title || t("clip.untitled"));
  const player = createPlayer({ title: clip.title || t("title.clip") });
  const status = h("p", { class: "notice clip-status", role: "status", "aria-live": "polite" });
  const meta = h("p", { class: "muted small clip-meta" },
    t("clip.meta", { n: formatNumber(clip.durationSeconds), date: formatDate(clip.createdAt) }));
  const channelLink = h("a", { class: "clip-channel", href: "/" }, "");

  const shareStatus = h("span", { class: "share-status", role: "status", "aria-live": "polite" });
  const share = h("button", { type: "button", class: "btn btn-secondary btn-small clip-share" }, t("stream.share"));
  share.addEventListener("click", async () => {
    const url = `${location.origin}/clips/${encodeURIComponent(clip.id)}`;
    if (navigator.share && matchMedia("(pointer: coarse)").matches) {
      try {
        await navigator.share({ title: clip.title || t("title.clip"), url });
        return;
      } catch {
        // dismissed or refused: fall back to copying
      }
    }
    shareStatus.textContent = (await copyText(url)) ? t("stream.linkCopied") : url;
  });
  const remove = h("button", { type: "button", class: "btn btn-secondary btn-small clip-delete", hidden: true }, t("common.delete"));
  remove.addEventListener("click", async () => {
    try {
      await api.del(`/api/clips/${encodeURIComponent(clip.id)}`);
      status.textContent = t("clip.deleted");
      player.stop?.();
      remove.hidden = true;
    } catch (err) {
      status.textContent = err.status === 403 ? t("clip.notAllowed") : (err.detail || t("clip.deleteFailed"));
    }
  });
  if (auth.isLoggedIn()) remove.hidden = false;

  view.append(h("section", { class: "container page clip-page" },
    h("div", { class: "clip-stage" }, player.root), status, title, meta, channelLink,
    h("div", { class: "creator-actions" }, share, shareStatus, remove)));

  api.get(`/api/channels/${encodeURIComponent(clip.channelId)}`).then((channel) => {
    channelLink.textContent = t("clip.from", { name: channel.name });
    channelLink.href = `/streams/${encodeURIComponent(channel.slug)}`;
  }).catch(() => {});

  let timer = null;
  const show = () => {
    if (clip.status === "ready") {
      status.textContent = "";
      player.playVod(clip.url);
    } else if (clip.status === "failed") {
      status.textContent = t("clip.failed");
    } else {
      status.textContent = t("clip.making");
      timer = setTimeout(async () => {
        try {
          clip = await api.get(`/api/clips/${encodeURIComponent(clip.id)}`);
        } catch {
          // keep polling: a blip is not the end of the clip
        }
        if (ctx.isCurrent()) show();
      }, POLL_MS);
    }
  };
  show();
  return () => {
    clearTimeout(timer);
    player.destroy();
  };
}
