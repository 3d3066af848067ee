// /streams/<slug>: the player and chat arrive with the streams and chat services.

import { h } from "../ui.js";

export default function stream(view, ctx) {
  ctx.setTitle(ctx.params.slug);
  view.append(
    h("section", { class: "container narrow page" },
      h("h1", {}, ctx.params.slug),
      h("div", { class: "placeholder-panel" },
        h("p", {}, "Stream pages arrive with the streams and chat services."),
        h("p", { class: "muted" }, "This address will show the live player, chat and the creator's card.")),
      h("p", {}, h("a", { href: "/" }, "Back to the home page"))));
}
