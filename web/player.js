// The video player: hls.js (npm, served at /vendor/) for live Low-Latency HLS with a quality
// selector (Auto + every rendition), how far behind live the picture is, seeking back in the live
// stream's DVR window (the seek bar or "Back 10 s") and a "Go to live" button, recovery from network
// and media errors, and full screen; a plain <video src> for VOD recordings (MP4).

import { h, uid } from "./ui.js";
import { formatNumber, t } from "./i18n.js";

let hlsModule = null;
/** hls.js is loaded only by pages that play video. */
function loadHls() {
  if (!hlsModule) hlsModule = import("/vendor/hls.min.mjs").then((m) => m.default);
  return hlsModule;
}

function levelLabel(level) {
  if (level.height) return `${level.height}p`;
  // the source rendition is passed through as sent, often without a RESOLUTION attribute
  if (level.bitrate) return t("player.sourceRate", { mbps: formatNumber(level.bitrate / 1e6, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
  return level.name || t("player.source");
}

/**
 * @param {{title: string}} options
 * @returns {{root: HTMLElement, video: HTMLVideoElement, playLive(url: string): Promise<void>,
 *            playVod(url: string): void, destroy(): void}}
 */
export function createPlayer({ title }) {
  const video = h("video", {
    class: "player-video", playsinline: true, controls: true, muted: true, autoplay: true, preload: "auto",
    "aria-label": t("player.label", { title }),
  });
  video.muted = true; // autoplay is allowed muted; the viewer unmutes with the controls
  const qualityId = uid("quality");
  const quality = h("select", { id: qualityId, class: "quality-select", disabled: true }, h("option", { value: "-1" }, t("player.auto")));
  const fullscreen = h("button", { type: "button", class: "btn btn-small btn-ghost player-fs", "aria-pressed": "false" }, t("player.fullscreen"));
  // hls.latency: seconds between the live edge and what is on screen (read every half second; the
  // text changes at most that often, so screen readers are not flooded: aria-live off)
  const behind = h("span", { class: "behind-live", hidden: true, "aria-live": "off" });
  const goLive = h("button", { type: "button", class: "btn btn-small btn-ghost go-live", hidden: true }, t("player.goLive"));
  const seekBack = h("button", { type: "button", class: "btn btn-small btn-ghost seek-back", hidden: true,
    "aria-label": t("player.back10Label") }, t("player.back10"));
  const overlay = h("div", { class: "player-overlay", hidden: true, role: "status", "aria-live": "polite" });
  const stage = h("div", { class: "player-stage" }, video, overlay);
  const bar = h("div", { class: "player-bar" }, behind, seekBack, goLive,
    h("label", { for: qualityId, class: "quality-label" }, t("player.quality")), quality, fullscreen);
  const root = h("div", { class: "player" }, stage, bar);

  let hls = null;
  let retryTimer = null;
  let latencyTimer = null;
  let mediaErrors = 0;
  let destroyed = false;

  const setOverlay = (text) => {
    overlay.textContent = text || "";
    overlay.hidden = !text;
  };
  video.addEventListener("playing", () => setOverlay(""));
  video.addEventListener("waiting", () => { if (hls) setOverlay(t("player.buffering")); });

  fullscreen.addEventListener("click", async () => {
    try {
      if (document.fullscreenElement) await document.exitFullscreen();
      else await root.requestFullscreen();
    } catch {
      /* refused (e.g. not from a user gesture) */
    }
  });
  const onFullscreen = () => {
    const on = document.fullscreenElement === root;
    fullscreen.textContent = on ? t("player.exitFullscreen") : t("player.fullscreen");
    fullscreen.setAttribute("aria-pressed", String(on));
  };
  document.addEventListener("fullscreenchange", onFullscreen);

  const fillLevels = () => {
    const levels = hls ? hls.levels : [];
    const options = [h("option", { value: "-1" }, t("player.auto"))];
    // highest first, as viewers expect
    levels.map((level, i) => ({ level, i }))
      .sort((a, b) => (b.level.bitrate || 0) - (a.level.bitrate || 0))
      .forEach(({ level, i }) => options.push(h("option", { value: String(i) }, levelLabel(level))));
    quality.replaceChildren(...options);
    quality.value = hls && hls.manualLevel >= 0 ? String(hls.manualLevel) : "-1";
    quality.disabled = levels.length < 2;
  };
  const showAutoLevel = () => {
    if (!hls || quality.value !== "-1") return;
    const level = hls.levels[hls.currentLevel];
    quality.options[0].textContent = level ? t("player.autoLevel", { level: levelLabel(level) }) : t("player.auto");
  };
  quality.addEventListener("change", () => {
    if (!hls) return;
    const value = Number(quality.value);
    hls.currentLevel = value; // -1: back to adaptive
    quality.options[0].textContent = t("player.auto");
    showAutoLevel();
  });

  // more than this beyond the target latency (PART-HOLD-BACK, ~1 s) and the viewer is offered a jump
  const FAR_BEHIND_SECONDS = 1;
  // the target latency: the origin's PART-HOLD-BACK once a playlist says it (holdBack), 1 s before
  let holdBack = 1;
  // hls.js jumps back to live this far past the target (see the Hls config below), except while the
  // viewer watches behind on purpose (DVR): then the limit is lifted until "Go to live"
  const JUMP_BEYOND_SECONDS = 2;
  const liveMaxLatency = () => holdBack + JUMP_BEYOND_SECONDS;
  const SEEK_BACK_SECONDS = 10;
  let rewound = false;
  const setRewound = (on) => {
    rewound = on;
    if (hls) hls.config.liveMaxLatencyDuration = on ? Infinity : liveMaxLatency();
  };
  const showLatency = () => {
    const latency = hls ? hls.latency : NaN;
    if (!hls || !Number.isFinite(latency) || latency <= 0 || video.readyState < 2) {
      behind.hidden = true;
      goLive.hidden = true;
      seekBack.hidden = true;
      return;
    }
    behind.hidden = false;
    seekBack.hidden = false;
    seekBack.disabled = !video.seekable.length || video.currentTime - video.seekable.start(0) < 1;
    behind.textContent = t("player.behind", { s: formatNumber(latency, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
    behind.dataset.latency = latency.toFixed(3);
    const target = Number.isFinite(hls.targetLatency) ? hls.targetLatency : 0;
    goLive.hidden = !(video.paused || latency - target > FAR_BEHIND_SECONDS);
  };
  seekBack.addEventListener("click", () => {
    if (!hls || !video.seekable.length) return;
    setRewound(true); // before the seek: hls.js must not take the viewer straight back to live
    video.currentTime = Math.max(video.seekable.start(0), video.currentTime - SEEK_BACK_SECONDS);
    showLatency();
  });
  // the seek bar: a seek well behind where hls.js keeps live playback is watching behind on
  // purpose; a seek back up to it is live again. hls.js's own seeks go to the live position.
  video.addEventListener("seeking", () => {
    const edge = hls ? hls.liveSyncPosition : null;
    if (!Number.isFinite(edge)) return;
    if (video.currentTime < edge - liveMaxLatency()) setRewound(true);
    else if (rewound && video.currentTime >= edge - FAR_BEHIND_SECONDS) setRewound(false);
  });
  goLive.addEventListener("click", () => {
    if (!hls) return;
    setRewound(false);
    hls.targetLatency = holdBack; // also forgets the stalls that pushed the target further back
    const edge = hls.liveSyncPosition;
    if (Number.isFinite(edge)) video.currentTime = edge;
    video.play().catch(() => {});
    showLatency();
  });

  const stopHls = () => {
    clearTimeout(retryTimer);
    clearInterval(latencyTimer);
    latencyTimer = null;
    behind.hidden = true;
    goLive.hidden = true;
    seekBack.hidden = true;
    rewound = false;
    if (hls) {
      hls.destroy();
      hls = null;
    }
  };

  async function playLive(url) {
    stopHls();
    mediaErrors = 0;
    setOverlay(t("player.loading"));
    const Hls = await loadHls();
    if (destroyed) return;
    if (!Hls.isSupported()) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) { // Safari plays HLS natively
        video.src = url;
        video.play().catch(() => {});
        return;
      }
      setOverlay(t("player.unsupported"));
      return;
    }
    hls = new Hls({
      workerPath: "/vendor/hls.worker.js",
      // LL-HLS: parts and blocking playlist reloads. The target latency is the origin's
      // PART-HOLD-BACK (three parts; shorter with a shorter LLHLS_PART_SECONDS), which hls.js takes
      // from the playlist as long as no liveSyncDuration is configured (one was, and pinned every
      // viewer at 1 s whatever the origin said). Up to 2 s past the target
      // (liveMaxLatencyDuration, set below) hls.js catches up by playing up to 25 % faster;
      // further behind (a start or a stall that left it there) it jumps back to live: without
      // that hls.js treats it as watching behind on purpose and stays there. A viewer who paused
      // gets the "Go to live" button. A viewer who seeks back in the DVR window (the origin lists
      // DVR_WINDOW_SECONDS) lifts the jump until "Go to live" (setRewound).
      lowLatencyMode: true,
      maxLiveSyncPlaybackRate: 1.25,
      // hls.js adds this to the target after every stall and never takes it back (up to one
      // target duration): a part (the playlist's PART-TARGET once loaded, below), not hls.js's
      // whole second, so a stall at start-up or a quality switch does not double the latency for
      // the rest of the session
      liveSyncOnStallIncrease: 0.34,
      manifestLoadingMaxRetry: 6,
      manifestLoadingRetryDelay: 500,
      levelLoadingMaxRetry: 6,
      fragLoadingMaxRetry: 6,
    });
    const current = hls;
    // hls.js's constructor refuses liveMaxLatencyDuration without liveSyncDuration; it reads
    // both from its config at run time, so the limit is set here and follows the playlist
    hls.config.liveMaxLatencyDuration = rewound ? Infinity : liveMaxLatency();
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      fillLevels();
      video.play().catch(() => setOverlay(t("player.pressPlay")));
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, showAutoLevel);
    // the jump-back limit, "Go to live" and the step a stall adds to the target follow the
    // playlist's PART-HOLD-BACK and PART-TARGET
    hls.on(Hls.Events.LEVEL_LOADED, (_event, data) => {
      const { partHoldBack, partTarget } = data.details || {};
      if (current !== hls) return;
      if (partTarget > 0) hls.config.liveSyncOnStallIncrease = partTarget;
      if (!(partHoldBack > 0) || partHoldBack === holdBack) return;
      holdBack = partHoldBack;
      if (!rewound) hls.config.liveMaxLatencyDuration = liveMaxLatency();
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal || current !== hls) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        // the playlist may not exist yet (just went live) or the network blipped: keep trying
        setOverlay(t("player.reconnecting"));
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => {
          if (current !== hls) return;
          if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR || data.details === Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT) {
            playLive(url);
          } else {
            hls.startLoad();
          }
        }, 2000);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaErrors < 3) {
        mediaErrors += 1;
        setOverlay(t("player.recovering"));
        if (mediaErrors === 2) hls.swapAudioCodec();
        hls.recoverMediaError();
      } else {
        setOverlay(t("player.failed"));
        retryTimer = setTimeout(() => { if (current === hls) playLive(url); }, 3000);
      }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    latencyTimer = setInterval(showLatency, 500);
  }

  function playVod(url) {
    stopHls();
    quality.replaceChildren(h("option", { value: "-1" }, t("player.source")));
    quality.disabled = true;
    setOverlay("");
    video.src = url;
    video.play().catch(() => {});
  }

  /** Stop playing and release the stream (the element stays, e.g. while the channel is offline). */
  function stop() {
    stopHls();
    setOverlay("");
    video.removeAttribute("src");
    video.load();
  }

  function destroy() {
    destroyed = true;
    stopHls();
    document.removeEventListener("fullscreenchange", onFullscreen);
    video.removeAttribute("src");
    video.load();
  }

  return { root, video, playLive, playVod, stop, destroy, get hls() { return hls; } };
}
