"""Chat as a viewer meets it: a message typed into one Chromium page until it shows in another
viewer's page, on the deployed path, alone and inside a busy room.

    .venv/bin/python bench/chat_browser.py [--rates 0,100,1000] [--viewers 1000] [--messages 20]
                                           [--paths l4,gw] [--output chat_browser]

Starts the whole platform as `make run` does, with the chat edges published at an L4 address
(`CHAT_WS_URL`, a kernel DNAT over both edges as kube-proxy gives a Service: chat_path.py's
`P-l4`), so the gateway writes that address into the page and the page's own `chatUrl()` uses it,
as in production. Two signed-in users in two browser contexts (Debian's Chromium) open the
benchmark channel's stream page; the sender's page submits its composer (the app's own submit
handler, as Enter does) and the time from that submit to the message's row in the reader's chat
log (a MutationObserver in the reader's page) is the latency. Both pages are in one browser on
one clock (`performance.timeOrigin + performance.now()`).

Per path (`l4`: the published edge address; `gw`: the same page with the address left out, so it
chats over the gateway's `/ws`, as `make run` does) and per background rate R (messages/s into the
same room from the shared harness's load generator, with `--viewers` sockets reading them:
chat_path.py's `Bench.point`), it reports p50/p95/max of the browser-to-browser latency, the
sender's own echo (submit -> its row in the sender's log, after `chat:ack`), and the harness's
socket-level p50/p99 of the same window. R=0 is the quiet room (no load generator).

Writes bench/results/chat_browser.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from _common import _cmdline, cpu_seconds, machine_info, process_tree, progress, write_results
from chat_path import Bench, enter_platform, ensure_harness_deps, harness_dir

CHROMIUM = "/usr/bin/chromium"
# records when a row whose text starts with the probe prefix lands in the chat log
OBSERVE = """(prefix) => {
  window.__seen = {};
  const log = document.querySelector('.chat-log');
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const r of records) for (const node of r.addedNodes) {
      const text = node.querySelector && node.querySelector('.chat-text');
      if (text && text.textContent.startsWith(prefix) && !(text.textContent in window.__seen)) {
        window.__seen[text.textContent] = at;
      }
    }
  }).observe(log, { childList: true });
  return true;
}"""
# the composer's own submit, as Enter does; the time is taken just before the app's handler runs
SUBMIT = """(text) => {
  const input = document.querySelector('.chat-form .chat-input');
  input.value = text;
  const at = performance.timeOrigin + performance.now();
  input.form.requestSubmit();
  return at;
}"""
UNPUBLISH = """document.addEventListener('readystatechange', () => {
  const meta = document.querySelector('meta[name="chat-url"]');
  if (meta) meta.content = '';
});"""
# rows ever added to the reader's log (the log itself keeps only the newest 250)
COUNT_ROWS = """() => {
  window.__added = 0;
  new MutationObserver((records) => {
    for (const r of records) window.__added += r.addedNodes.length;
  }).observe(document.querySelector('.chat-log'), { childList: true });
}"""
LOAD_ROWS = """() => window.__added"""


def quantiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50Ms": round(statistics.median(ordered), 1), "p95Ms": round(p95, 1),
            "maxMs": round(ordered[-1], 1), "minMs": round(ordered[0], 1)}


def timeline_top(trace: dict, top: int = 15) -> list[dict]:
    """The renderer main thread's timeline events with the most time of their own (ms in all)."""
    events = [e for e in trace.get("traceEvents", trace if isinstance(trace, list) else [])
              if e.get("ph") == "X" and "dur" in e]
    main = {}
    for e in trace.get("traceEvents", []):
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain":
            main[(e["pid"], e["tid"])] = True
    own: dict[str, float] = {}
    by_thread: dict[tuple, list] = {}
    for e in events:
        if (e["pid"], e["tid"]) in main:
            by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[dict] = []
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                own[stack[-1]["name"]] = own.get(stack[-1]["name"], 0.0) - e["dur"]
            own[e["name"]] = own.get(e["name"], 0.0) + e["dur"]
            stack.append(e)
    return [{"event": k, "ms": round(v / 1000, 1)} for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:top]]


class Viewers:
    """The two pages: `sender` types, `reader` watches."""

    def __init__(self, browser, base_url: str, users: list[dict], slug: str, path: str):
        self.pages = []
        for user in users:
            context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
            if path == "gw":
                # the page as the gateway serves it without CHAT_WS_URL (chat over /ws): the address
                # is taken out of the parsed page before the app's scripts run. (Not by rewriting the
                # response in a route: Chromium treats a fulfilled document as public and then
                # refuses its sockets to loopback, ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS.)
                context.add_init_script(UNPUBLISH)
            page = context.new_page()
            # (a 404 is how the API says "not subscribed": the browser logs it as a failed load)
            page.on("console", lambda m: m.type in ("error", "warning") and "Failed to load resource" not in m.text
                    and progress(f"  page console: {m.text[:300]}"))
            page.goto("/auth/login")
            page.locator('form [name="login"]').fill(user["username"])
            page.locator('form [name="password"]').fill(user["password"])
            page.get_by_role("button", name="Log in", exact=True).click()
            page.wait_for_url("**/dashboard**", timeout=30_000)
            page.goto(f"/streams/{slug}")
            page.locator(".chat-form .chat-input").wait_for(timeout=30_000)
            page.locator(".chat-log").wait_for(state="attached")
            self.pages.append(page)
        self.sender, self.reader = self.pages
        self.reader.evaluate(COUNT_ROWS)
        for page in self.pages:  # the chat's socket open (the panel's own connection state)
            page.locator('[data-connection="open"]').wait_for(state="attached", timeout=30_000)

    def chat_socket_url(self) -> str:
        return self.reader.evaluate("() => document.querySelector('meta[name=\"chat-url\"]').content") or "/ws"

    def measure(self, count: int, interval: float, profile: Path | None = None) -> dict:
        prefix = f"probe-{uuid.uuid4().hex[:6]}-"
        metrics = self.reader.context.new_cdp_session(self.reader)
        metrics.send("Performance.enable")
        # what the reader's socket brought, by event type (one frame may carry several lines)
        kinds: dict[str, int] = {}
        frames = [0]

        def tally(event) -> None:
            frames[0] += 1
            for kind in re.findall(r'"type":\s*"([^"]+)"', event["response"]["payloadData"]):
                kinds[kind] = kinds.get(kind, 0) + 1

        metrics.on("Network.webSocketFrameReceived", tally)
        metrics.send("Network.enable")
        metrics_before = {m["name"]: m["value"] for m in metrics.send("Performance.getMetrics")["metrics"]}
        if profile is not None:  # the reader's timeline (DevTools' Performance panel reads the file)
            self.reader.context.browser.start_tracing(page=self.reader, path=str(profile),
                                                      categories=["devtools.timeline", "disabled-by-default-devtools.timeline"])
        for page in self.pages:
            page.evaluate(OBSERVE, prefix)
        sent: dict[str, float] = {}
        # the browser's processes (both pages, the GPU and network processes): what a viewer's own
        # machine spends on the chat, here on the platform's cores
        browser = [pid for pid in process_tree(os.getpid()) if "chromium" in _cmdline(pid)]
        cpu_before, started = cpu_seconds(browser), time.monotonic()
        for i in range(count):
            text = f"{prefix}{i}"
            sent[text] = self.sender.evaluate(SUBMIT, text)
            time.sleep(interval)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(self.reader.evaluate("() => window.__seen")) >= count:
                break
            time.sleep(0.2)
        cpu_after, elapsed = cpu_seconds(browser), time.monotonic() - started
        metrics_after = {m["name"]: m["value"] for m in metrics.send("Performance.getMetrics")["metrics"]}
        metrics.detach()
        # the reader's main thread per second of the window: what it spent on what (DevTools' counters)
        reader = {k: round((metrics_after[k] - metrics_before[k]) / elapsed * (100 if k.endswith("Duration") else 1), 1)
                  for k in ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration",
                            "RecalcStyleCount", "LayoutCount") if k in metrics_after}
        top = None
        if profile is not None:
            self.reader.context.browser.stop_tracing()
            top = timeline_top(json.loads(profile.read_text()))
        browser_cpu = sum(cpu_after.get(pid, t) - t for pid, t in cpu_before.items()) / elapsed * 100
        by_kind: dict[str, float] = {}
        for pid, t in cpu_before.items():
            kind = re.search(r"--type=([\w-]+)(?:.*--utility-sub-type=([\w.]+))?", _cmdline(pid))
            name = (kind[2] or kind[1]) if kind else "browser"
            by_kind[name] = by_kind.get(name, 0.0) + (cpu_after.get(pid, t) - t) / elapsed * 100
        seen, echoed = self.reader.evaluate("() => window.__seen"), self.sender.evaluate("() => window.__seen")
        return {"browserToBrowser": quantiles([seen[t] - at for t, at in sent.items() if t in seen]),
                "samplesMs": [round(seen[t] - at, 1) if t in seen else None for t, at in sent.items()],
                "senderEcho": quantiles([echoed[t] - at for t, at in sent.items() if t in echoed]),
                "sent": count, "lost": sum(1 for t in sent if t not in seen),
                "browserCpuPct": round(browser_cpu, 1), "readerMainThread": reader,
                "readerFramesPerSecond": round(frames[0] / elapsed, 1),
                "readerEventsPerSecond": {k: round(v / elapsed, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
                "browserCpuPctByProcess": {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}, **({"readerTimelineTop": top} if top else {})}

    def close(self) -> None:
        for page in self.pages:
            page.context.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="0,100,1000", help="background messages/s into the room (0 = quiet)")
    p.add_argument("--viewers", type=int, default=1000, help="background viewer sockets while R > 0")
    p.add_argument("--messages", type=int, default=20, help="probe messages per point")
    p.add_argument("--interval", type=float, default=0.4, help="seconds between probe messages")
    p.add_argument("--paths", default="l4,gw", help="l4 (the published edge address), gw (the gateway's /ws)")
    p.add_argument("--users", type=int, default=200, help="sender users for the load generator")
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--harness", default=None)
    p.add_argument("--node-dir", default="/tmp/chatbench-node")
    p.add_argument("--venv", default="/tmp/chatbench-venv")
    p.add_argument("--quiet-wait", type=int, default=5)
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--other-max-pct", type=int, default=40)
    p.add_argument("--profile", default=None, help="folder for the reader page's timeline per point (DevTools' Performance panel opens it)")
    p.add_argument("--output", default="chat_browser")
    args = p.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    harness = harness_dir(args.harness)
    if any(rates):
        ensure_harness_deps(harness, args.node_dir, args.venv)

    from playwright.sync_api import sync_playwright

    machine = machine_info()
    points = []
    published = {}

    def publish_edges(config) -> None:
        # the address start_l4_address() rewrites to both edges; the gateway writes it into the page
        published["url"] = f"ws://127.0.0.77:{config.service_ports['chat-edge-1']}/ws"
        config.chat_ws_url = published["url"]

    with contextlib.ExitStack() as exits:
        stack = enter_platform(exits, configure=publish_edges)
        work = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="chat-browser-")))
        bench = Bench(args, harness, stack, work)
        bench.start_l4_address(exits)
        bench.prepare()
        doc = json.loads(bench.tokens.read_text())
        base_url = f"http://localhost:{stack.config.gateway_port}"
        slug = httpx.get(f"{base_url}/api/channels/{doc['channelId']}", timeout=30).json()["slug"]
        # the last two of the senders' users: the load generator takes its senders from the front
        browser_users = doc["users"][-2:]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            for path in paths:
                viewers = Viewers(browser, base_url, browser_users, slug, path)
                progress(f"{path}: the pages chat over {viewers.chat_socket_url()}")
                for rate in rates:
                    load: dict = {}
                    thread = None
                    if rate > 0:
                        target = "P-l4" if path == "l4" else "P-gw"
                        window = args.messages * args.interval + 8
                        thread = threading.Thread(target=lambda t=target, r=rate, w=window, into=load: into.update(
                            bench.point(t, args.viewers, r, w)), daemon=True)
                        rows = viewers.reader.evaluate(LOAD_ROWS)
                        thread.start()
                        # the generator's send window has begun once its messages reach the reader
                        deadline = time.monotonic() + 300
                        while viewers.reader.evaluate(LOAD_ROWS) <= rows + 5 and time.monotonic() < deadline:
                            if not thread.is_alive():
                                raise SystemExit(f"the load generator ended before its messages arrived: {load}")
                            time.sleep(0.2)
                        time.sleep(2)
                    profile = None
                    if args.profile:
                        Path(args.profile).mkdir(parents=True, exist_ok=True)
                        profile = Path(args.profile) / f"reader-{path}-R{rate:g}.trace.json"
                    result = viewers.measure(args.messages, args.interval, profile)
                    if thread is not None:
                        thread.join(timeout=900)
                    point = {"path": path, "rate": rate, "viewers": args.viewers if rate else 2, **result,
                             "harness": {k: load.get(k) for k in ("deliveriesPerSecond", "p50Ms", "p99Ms", "lossPct",
                                                                  "acked", "unanswered", "ok", "notes",
                                                                  "platformCpuPctTotal")} if load else None}
                    b2b = point["browserToBrowser"]
                    progress(f"  {path} R={rate:g}: browser -> browser p50 {b2b.get('p50Ms')} / p95 {b2b.get('p95Ms')}"
                             f" / max {b2b.get('maxMs')} ms (n={b2b['n']}, lost {point['lost']}); "
                             f"browser CPU {point['browserCpuPct']} % of a core; "
                             f"echo p50 {point['senderEcho'].get('p50Ms')} ms; harness p50/p99 "
                             f"{load.get('p50Ms')}/{load.get('p99Ms')} ms")
                    points.append(point)
                viewers.close()
            browser.close()
    path = write_results(args.output, machine, {
        "command": "bench/chat_browser.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                                       if k in ("rates", "viewers", "messages", "interval", "paths")),
        "points": points})
    progress(f"wrote {path}")


if __name__ == "__main__":
    main()
