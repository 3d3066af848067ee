// /auth/login: email or username + password -> ?next= (same-origin only) or the dashboard.

import * as auth from "../auth.js";
import { t } from "../i18n.js";
import { clearErrors, field, focusFirstInvalid, formStatus, h, setBusy, validate } from "../ui.js";

const RULES = {
  login: (v) => (v.trim() ? null : t("login.enterLogin")),
  password: (v) => (v ? null : t("login.enterPassword")),
};

function waitText(seconds) {
  if (!seconds) return t("login.waitMoment");
  if (seconds < 90) return t("login.waitSeconds", { n: seconds });
  return t("login.waitMinutes", { n: Math.ceil(seconds / 60) });
}

export default function login(view, ctx) {
  const next = ctx.safeNext(ctx.query.get("next"));
  const fields = {
    login: field({ name: "login", label: t("login.loginLabel"), autocomplete: "username", required: true,
      attrs: { autocapitalize: "none", spellcheck: "false" } }),
    password: field({ name: "password", label: t("login.passwordLabel"), type: "password", autocomplete: "current-password",
      required: true, reveal: true }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "login-title" },
    fields.login.root, fields.password.root, status.el,
    h("button", { type: "submit", class: "btn btn-primary btn-block" }, t("login.submit")));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    if (!validate(fields, RULES)) {
      status.set(t("login.fillBoth"), "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set(t("login.busy"));
    try {
      const user = await auth.login(fields.login.input.value.trim(), fields.password.input.value);
      status.set(t("login.done"), "success");
      ctx.navigate(next || (user.onboarded ? "/dashboard" : "/onboarding"));
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      if (err.status === 401) {
        status.set(t("login.wrong"), "error");
        fields.password.input.select();
        fields.password.input.focus();
      } else if (err.status === 429) {
        status.set(t("login.tooMany", { wait: waitText(err.retryAfter) }), "error");
      } else if (err.status === 422) {
        status.set(t("login.check"), "error");
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  const notice = ctx.query.get("expired")
    ? h("p", { class: "notice" }, t("login.expired"))
    : next ? h("p", { class: "notice" }, t("login.toContinue")) : null;

  view.append(
    h("section", { class: "container auth-page" },
      h("div", { class: "card auth-card" },
        h("h1", { id: "login-title" }, t("login.submit")),
        h("p", { class: "muted" }, t("login.welcome")),
        notice,
        form,
        h("p", { class: "switch" }, t("login.newHere"),
          h("a", { href: next ? `/auth/register?next=${encodeURIComponent(next)}` : "/auth/register" }, t("login.createAccount"))))));
}
