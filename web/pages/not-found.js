import { t } from "../i18n.js";
import { h } from "../ui.js";

export default function notFound(view) {
  view.append(
    h("section", { class: "container narrow page" },
      h("h1", {}, t("title.notFound")),
      h("p", { class: "muted" }, t("notFound.text")),
      h("p", {}, h("a", { class: "btn btn-secondary", href: "/" }, t("notFound.home")))));
}
