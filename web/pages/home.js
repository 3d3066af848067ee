// Home: a hero and, until the channels service exists, an honest "directory coming soon".

import * as auth from "../auth.js";
import { h } from "../ui.js";

export default function home(view) {
  const user = auth.currentUser();
  const loggedIn = auth.isLoggedIn();
  const actions = loggedIn
    ? [h("a", { class: "btn btn-primary btn-large", href: "/dashboard" }, "Open your dashboard"),
      h("a", { class: "btn btn-secondary btn-large", href: "/dashboard/profile" }, "Edit your profile")]
    : [h("a", { class: "btn btn-primary btn-large", href: "/auth/register" }, "Create an account"),
      h("a", { class: "btn btn-secondary btn-large", href: "/auth/login" }, "Log in")];

  view.append(
    h("section", { class: "hero", "aria-labelledby": "hero-title" },
      h("div", { class: "container hero-inner" },
        h("p", { class: "eyebrow" }, "Self-hosted live streaming"),
        h("h1", { id: "hero-title" },
          loggedIn && user ? `Welcome back, ${user.displayName || user.username}.` : "Go live. Watch live. Talk live."),
        h("p", { class: "lead" },
          "Stream from OBS or ffmpeg, watch in adaptive quality, and chat with your viewers in real time — on a platform you run yourself."),
        h("div", { class: "actions" }, actions))),
    h("section", { class: "container section", "aria-labelledby": "directory-title" },
      h("div", { class: "section-head" },
        h("h2", { id: "directory-title" }, "Live channels"),
        h("span", { class: "badge" }, "Coming soon")),
      h("div", { class: "placeholder-panel" },
        h("p", {}, "The channel directory arrives with the channels and streams services."),
        h("p", { class: "muted" }, "Live channels will be listed here, busiest first, with their thumbnail, title, category and viewer count."))),
  );
}
