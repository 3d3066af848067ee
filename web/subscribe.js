// The stream page's subscription panel (API.md Extensions, "Subscriptions"): a tier picker and
// Subscribe, the current tier with its renewal (or end) date, Change tier, Cancel, and Resume for a
// cancelled subscription that has not run out. Signed out, it links to the login page; the
// channel's owner gets nothing (a creator cannot subscribe to their own channel).

import { api, ApiError } from "./api.js";
import { language, t } from "./i18n.js";
import { announce, h, tierName, uid } from "./ui.js";

const TIERS = ["BASIC", "PREMIUM", "VIP"];

function day(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleDateString(language(), { year: "numeric", month: "long", day: "numeric" });
}

/** The panel for `channel` and the signed-in user `me` (null when signed out); null for the owner. */
export function subscribePanel(channel, me) {
  if (me && me.id === channel.ownerId) return null;
  const titleId = uid("subscribe-title");
  const root = h("section", { class: "subscribe-panel", "aria-labelledby": titleId },
    h("h2", { id: titleId, class: "subscribe-title" }, t("subs.title")));
  if (!me) {
    root.append(h("a", { class: "btn btn-primary btn-small", href: `/auth/login?next=${encodeURIComponent(location.pathname)}` },
      t("subs.subscribe")));
    return { root, load: async () => {} };
  }

  const path = `/api/channels/${encodeURIComponent(channel.id)}/subscription`;
  let current = null; // the caller's subscription, or null
  const pickerId = uid("subscribe-tier");
  const picker = h("select", { id: pickerId, class: "subscribe-tier" },
    TIERS.map((tier) => h("option", { value: tier }, tierName(tier))));
  const summary = h("p", { class: "subscribe-state", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-small subscribe-submit" }, t("subs.subscribe"));
  const cancel = h("button", { type: "button", class: "btn btn-secondary btn-small subscribe-cancel", hidden: true }, t("subs.cancel"));
  const error = h("p", { class: "subscribe-error", role: "alert" });
  const form = h("form", { class: "subscribe-form", novalidate: true },
    h("label", { for: pickerId }, t("subs.tier")), picker, submit, cancel);
  root.append(summary, form, error);

  function paint() {
    const status = current ? current.status : null;
    const subscribed = status === "ACTIVE" || status === "CANCELLED";
    root.dataset.status = subscribed ? status : "NONE";
    if (status === "ACTIVE") {
      summary.textContent = t("subs.active", { tier: tierName(current.tier), date: day(current.renewalDate) });
    } else if (status === "CANCELLED") {
      summary.textContent = t("subs.cancelled", { tier: tierName(current.tier), date: day(current.renewalDate) });
    } else if (status === "EXPIRED") {
      summary.textContent = t("subs.expired", { date: day(current.renewalDate) });
    } else {
      summary.textContent = t("subs.pitch", { name: channel.name });
    }
    if (subscribed) picker.value = current.tier;
    submit.textContent = status === "ACTIVE" ? t("subs.change") : status === "CANCELLED" ? t("subs.resume") : t("subs.subscribe");
    submit.disabled = status === "ACTIVE" && picker.value === current.tier;
    cancel.hidden = status !== "ACTIVE";
  }
  picker.addEventListener("change", () => {
    submit.disabled = Boolean(current && current.status === "ACTIVE" && picker.value === current.tier);
  });

  async function act(fn, done) {
    error.textContent = "";
    submit.disabled = true;
    cancel.disabled = true;
    try {
      current = await fn();
      announce(done());
    } catch (err) {
      error.textContent = err.status === 402 ? t("subs.refused", { reason: err.detail }) : (err.detail || t("subs.failed"));
    } finally {
      cancel.disabled = false;
      paint();
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(() => api.post(path, { tier: picker.value }), () => t("subs.active", { tier: tierName(current.tier), date: day(current.renewalDate) }));
  });
  cancel.addEventListener("click", () => {
    act(() => api.del(path), () => t("subs.cancelled", { tier: tierName(current.tier), date: day(current.renewalDate) }));
  });

  async function load() {
    try {
      current = await api.get(path);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) error.textContent = t("subs.failed");
      current = null;
    }
    paint();
  }
  paint();
  return { root, load };
}
