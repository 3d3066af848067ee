// The chat replay panel of a past broadcast (/streams/<slug>?vod=<streamId>): the stream's chat
// beside the recording, in step with playback and seeking (the clock is replay-sync.js). Read
// only: no socket, no composer; a VOD viewer is not in the live room (they would count as its
// viewers). Each line shows how far into the broadcast it was said.

import { api, ApiError } from "./api.js";
import { ReplaySync } from "./replay-sync.js";
import { chatBadge, formatDuration, h } from "./ui.js";
import { formatDateTime, t } from "./i18n.js";

const MAX_SHOWN = 200;
const NEAR_BOTTOM_PX = 48;
const PAGE = 100; // the API's largest page; a busy window takes several (nextCursor)
const MAX_PAGES = 50;

const BADGE_WORDS = () => ({ owner: t("chat.badge.creator"), broadcaster: t("chat.badge.creator"), moderator: t("chat.badge.mod"),
  mod: t("chat.badge.mod"), staff: t("chat.badge.staff") });

function hue(text) {
  let n = 0;
  for (const c of text || "") n = (n * 31 + c.charCodeAt(0)) % 360;
  return n;
}

/** @param {{streamId: string}} options */
export function createReplayChat({ streamId }) {
  const log = h("ol", { class: "chat-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": t("replay.messages"), tabindex: "0" });
  const empty = h("p", { class: "chat-empty muted" }, t("replay.loading"));
  const state = h("p", { class: "chat-state", role: "status", "aria-live": "polite" });
  const closeDrawer = h("button", { type: "button", class: "btn btn-ghost btn-small chat-close", "aria-label": t("chat.closeLabel") }, t("chat.close"));
  const root = h("section", { class: "chat chat-replay", "aria-labelledby": "chat-title" },
    h("header", { class: "chat-head" }, h("h2", { id: "chat-title" }, t("replay.title")), closeDrawer),
    h("div", { class: "chat-body" }, log, empty),
    h("p", { class: "chat-note muted" }, t("replay.note")),
    state);

  let following = true;
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  log.addEventListener("scroll", () => { following = nearBottom(); }, { passive: true });

  const render = (m) => {
    const user = m.user || {};
    return h("li", { class: "chat-message", dataset: { id: m.id, offset: String(m.offsetSeconds) } },
      h("time", { class: "chat-time", datetime: m.createdAt, title: formatDateTime(m.createdAt) }, formatDuration(m.offsetSeconds)),
      h("span", { class: "chat-line" },
        (user.badges || []).map((b) => chatBadge(b, BADGE_WORDS())),
        h("span", { class: "chat-name", style: { "--hue": String(hue(user.username)) } }, user.displayName || user.username || t("chat.someone")),
        h("span", { class: "visually-hidden" }, t("replay.said")),
        h("span", { class: "chat-sep", "aria-hidden": "true" }, ": "), h("span", { class: "chat-text" }, m.content)));
  };

  const showEmpty = (text) => {
    empty.textContent = text;
    empty.hidden = log.childElementCount > 0;
  };

  async function fetchWindow(from, to) {
    const items = [];
    let cursor = null;
    for (let n = 0; n < MAX_PAGES; n += 1) {
      const q = new URLSearchParams({ fromOffset: from.toFixed(3), toOffset: to.toFixed(3), limit: String(PAGE) });
      if (cursor) q.set("cursor", cursor);
      const page = await api.get(`/api/streams/${encodeURIComponent(streamId)}/messages?${q}`);
      items.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return items;
  }

  const sync = new ReplaySync({
    fetchWindow,
    onReset() {
      log.replaceChildren();
      following = true;
      showEmpty(t("replay.nothingHere"));
    },
    onAdd(messages) {
      const stick = following || nearBottom();
      log.append(...messages.map(render));
      while (log.childElementCount > MAX_SHOWN) log.firstElementChild.remove();
      empty.hidden = true;
      if (stick) log.scrollTop = log.scrollHeight;
    },
    onError(err) {
      // 409: the stream never went live; 404: chat never heard of it. Asking again changes nothing.
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        sync.stop();
        showEmpty(t("replay.none"));
        return;
      }
      state.textContent = t("replay.retrying");
      setTimeout(() => { state.textContent = ""; }, 4000);
    },
  });

  let video = null;
  const onTime = () => sync.tick(video.currentTime);
  const onSeeking = () => sync.seek(video.currentTime);
  const onDuration = () => sync.setEnd(video.duration);

  return {
    root,
    closeButton: closeDrawer,
    focusComposer() { log.focus(); },
    /** Follow `videoElement`'s playback (call once the recording is loading). */
    attach(videoElement) {
      video = videoElement;
      video.addEventListener("timeupdate", onTime);
      video.addEventListener("seeking", onSeeking);
      video.addEventListener("durationchange", onDuration);
      onDuration();
      sync.seek(video.currentTime || 0);
    },
    unavailable() {
      sync.stop();
      showEmpty(t("replay.unavailable"));
    },
    destroy() {
      sync.stop();
      if (video) {
        video.removeEventListener("timeupdate", onTime);
        video.removeEventListener("seeking", onSeeking);
        video.removeEventListener("durationchange", onDuration);
      }
    },
  };
}
