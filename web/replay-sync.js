// Chat replay's clock: which chat messages of a past broadcast belong beside the video's
// position. No DOM and no network of its own (the panel in replay.js hands it `fetchWindow`), so
// tests/web/test_replay_sync.py drives it under Node with a fake server.
//
// Messages come from GET /api/streams/{id}/messages?fromOffset=&toOffset= in windows of
// `windowSeconds`; the next window is asked for while `aheadSeconds` of the current one are still
// to play, so messages are there before the playhead. A message is shown once the playhead passes
// its `offsetSeconds`. A seek (a jump backwards, or forwards by more than `seekGapSeconds`)
// empties the panel, forgets what was fetched for the old position (an answer still on its way is
// dropped when it arrives) and starts again `backlogSeconds` before the new position, so the panel
// shows what was said just before it.

export const REPLAY_DEFAULTS = Object.freeze({
  windowSeconds: 30, // within the server's REPLAY_MAX_WINDOW_SECONDS (600) with the backlog added
  aheadSeconds: 15,
  backlogSeconds: 30,
  seekGapSeconds: 3, // timeupdate comes every ~250 ms while playing; a bigger jump is a seek
  retrySeconds: 2,
});

const byOffset = (a, b) => a.offsetSeconds - b.offsetSeconds || a.seq - b.seq;

export class ReplaySync {
  /**
   * @param {{fetchWindow: (from: number, to: number) => Promise<object[]>,
   *          onReset: () => void, onAdd: (messages: object[]) => void, onError?: (err: any) => void,
   *          now?: () => number}} hooks  `now` in seconds (tests pass a fake clock)
   * @param {Partial<typeof REPLAY_DEFAULTS>} [options]
   */
  constructor({ fetchWindow, onReset, onAdd, onError = () => {}, now = () => Date.now() / 1000 }, options = {}) {
    Object.assign(this, REPLAY_DEFAULTS, options);
    this.fetchWindow = fetchWindow;
    this.onReset = onReset;
    this.onAdd = onAdd;
    this.onError = onError;
    this.now = now;
    this.generation = 0;
    this.position = null; // the playhead as last seen
    this.end = null; // the recording's length, once known: nothing is fetched past it
    this.pending = []; // fetched, not shown yet (the playhead has not reached them), by offset
    this.known = new Set(); // ids fetched since the last seek (pending or shown)
    this.fetchedTo = null; // windows up to here are in
    this.inflight = false;
    this.retryAt = 0;
    this.stopped = false;
  }

  /** The playhead moved (timeupdate, or a timer while playing). */
  tick(t) {
    if (this.stopped || !Number.isFinite(t)) return;
    if (this.position === null || t < this.position - 0.5 || t > this.position + this.seekGapSeconds) {
      this.seek(t);
      return;
    }
    this.position = t;
    this.release();
    this.prefetch();
  }

  /** The viewer jumped to `t` (the video's `seeking`): start over from there. */
  seek(t) {
    if (this.stopped || !Number.isFinite(t)) return;
    this.generation += 1;
    this.position = Math.max(0, t);
    this.pending = [];
    this.known.clear();
    this.fetchedTo = null;
    this.inflight = false;
    this.retryAt = 0;
    this.onReset();
    this.prefetch();
  }

  /** The recording's length in seconds (the video's duration), when it is known. */
  setEnd(seconds) {
    this.end = Number.isFinite(seconds) && seconds > 0 ? seconds : null;
  }

  stop() {
    this.stopped = true;
    this.generation += 1;
  }

  release() {
    const due = [];
    while (this.pending.length && this.pending[0].offsetSeconds <= this.position) due.push(this.pending.shift());
    if (due.length) this.onAdd(due);
  }

  prefetch() {
    if (this.inflight || this.now() < this.retryAt) return;
    if (this.fetchedTo === null) {
      const from = Math.max(0, this.position - this.backlogSeconds);
      this.fetch(from, this.position + this.windowSeconds);
    } else if (this.fetchedTo - this.position <= this.aheadSeconds && (this.end === null || this.fetchedTo < this.end)) {
      this.fetch(this.fetchedTo, this.fetchedTo + this.windowSeconds);
    }
  }

  fetch(from, to) {
    const generation = this.generation;
    this.inflight = true;
    this.fetchWindow(from, to).then((messages) => {
      if (generation !== this.generation) return; // fetched for a position the viewer left
      this.inflight = false;
      this.fetchedTo = to;
      for (const m of messages || []) {
        if (!m || !m.id || m.deletedAt || this.known.has(m.id) || !Number.isFinite(m.offsetSeconds)) continue;
        this.known.add(m.id);
        this.pending.push(m);
      }
      this.pending.sort(byOffset);
      this.release();
      this.prefetch(); // a window ending before the playhead (after a slow answer): the next one at once
    }, (err) => {
      if (generation !== this.generation) return;
      this.inflight = false;
      this.retryAt = this.now() + this.retrySeconds;
      this.onError(err);
    });
  }
}
