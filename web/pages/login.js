// /auth/login: email or username + password -> ?next= (same-origin only) or the dashboard.

import * as auth from "../auth.js";
import { clearErrors, field, focusFirstInvalid, formStatus, h, setBusy, validate } from "../ui.js";

const RULES = {
  login: (v) => (v.trim() ? null : "Enter your email or username."),
  password: (v) => (v ? null : "Enter your password."),
};

function waitText(seconds) {
  if (!seconds) return "a moment";
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

export default function login(view, ctx) {
  const next = ctx.safeNext(ctx.query.get("next"));
  const fields = {
    login: field({ name: "login", label: "Email or username", autocomplete: "username", required: true,
      attrs: { autocapitalize: "none", spellcheck: "false" } }),
    password: field({ name: "password", label: "Password", type: "password", autocomplete: "current-password",
      required: true, reveal: true }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "login-title" },
    fields.login.root, fields.password.root, status.el,
    h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Log in"));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    if (!validate(fields, RULES)) {
      status.set("Please fill in both fields.", "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set("Logging in…");
    try {
      const user = await auth.login(fields.login.input.value.trim(), fields.password.input.value);
      status.set("Logged in.", "success");
      ctx.navigate(next || (user.onboarded ? "/dashboard" : "/onboarding"));
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      if (err.status === 401) {
        status.set("The login or password is wrong.", "error");
        fields.password.input.select();
        fields.password.input.focus();
      } else if (err.status === 429) {
        status.set(`Too many failed logins. Wait ${waitText(err.retryAfter)} and try again.`, "error");
      } else if (err.status === 422) {
        status.set("Check your email or username and password.", "error");
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  const notice = ctx.query.get("expired")
    ? h("p", { class: "notice" }, "Your session ended. Log in again to continue.")
    : next ? h("p", { class: "notice" }, "Log in to continue.") : null;

  view.append(
    h("section", { class: "container auth-page" },
      h("div", { class: "card auth-card" },
        h("h1", { id: "login-title" }, "Log in"),
        h("p", { class: "muted" }, "Welcome back."),
        notice,
        form,
        h("p", { class: "switch" }, "New here? ",
          h("a", { href: next ? `/auth/register?next=${encodeURIComponent(next)}` : "/auth/register" }, "Create an account")))));
}
