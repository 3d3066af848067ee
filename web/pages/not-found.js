import { h } from "../ui.js";

export default function notFound(view) {
  view.append(
    h("section", { class: "container narrow page" },
      h("h1", {}, "Page not found"),
      h("p", { class: "muted" }, "There is nothing at this address."),
      h("p", {}, h("a", { class: "btn btn-secondary", href: "/" }, "Go to the home page"))));
}
