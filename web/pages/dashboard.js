// /dashboard: the creator dashboard shell. Profile summary now; stream and moderation panels
// arrive with the channels, streams and chat services (said plainly, no placeholder data).

import * as auth from "../auth.js";
import { avatar, h, safeHttpUrl } from "../ui.js";

/** Side navigation shared by the dashboard pages. */
export function dashboardNav() {
  return h("nav", { class: "dash-nav", "aria-label": "Dashboard" },
    h("ul", { role: "list" },
      h("li", {}, h("a", { href: "/dashboard" }, "Overview")),
      h("li", {}, h("a", { href: "/dashboard/profile" }, "Profile"))));
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

function comingPanel(id, title, text) {
  return h("section", { class: "card panel-coming", "aria-labelledby": id },
    h("div", { class: "section-head" }, h("h2", { id }, title), h("span", { class: "badge" }, "Coming soon")),
    h("p", {}, text));
}

export default async function dashboard(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;

  view.append(
    h("div", { class: "container dash" },
      dashboardNav(),
      h("div", { class: "dash-main" },
        h("h1", {}, "Creator dashboard"),
        user.onboarded ? null : h("p", { class: "notice" }, "Your profile is not finished yet. ",
          h("a", { href: "/onboarding" }, "Finish setting it up")),
        h("div", { class: "dash-grid" },
          profileSummary(user),
          h("div", { class: "dash-side" },
            comingPanel("stream-title", "Stream",
              "Your stream key, RTMP address, Go live and End stream, the live status and viewer count arrive with the channels and streams services."),
            comingPanel("moderation-title", "Moderation",
              "Banned words, the profanity filter, slow mode, followers-only chat, moderators, bans, timeouts and reports arrive with the channels and chat services."))))));

  // keep the summary in step with edits made from the header menu's pages or another tab
  return auth.onChange((fresh, reason) => {
    if (reason !== "user" || !fresh) return;
    const old = view.querySelector(".profile-summary");
    if (old) old.replaceWith(profileSummary(fresh));
  });
}
