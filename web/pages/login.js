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

// The external sign-in's callback lands here with a fragment (never sent to a server, so never in
// a log): #oidc=<one-time code>&next=... or #oidcLink=<token>&provider=...&next=... when the
// provider's verified e-mail belongs to an account whose owner must log in to confirm the link.
function takeFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.get("oidc") && !params.get("oidcLink")) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return params;
}

export default async function login(view, ctx) {
  const fragment = takeFragment();
  const next = ctx.safeNext(ctx.query.get("next") || (fragment && fragment.get("next")));
  const linkToken = fragment && fragment.get("oidcLink");
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
      if (linkToken) {
        try {
          await auth.confirmExternalLink(linkToken);
        } catch (err) {
          // the password login stands; only the link failed (expired, or another account)
          status.set(t("login.linkFailed", { reason: err.detail || err.message }), "error");
          setBusy(form, false);
          return;
        }
      }
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

  const notice = linkToken
    ? h("p", { class: "notice", "data-testid": "oidc-link-notice" },
      t("login.linkNotice", { provider: fragment.get("provider") || t("login.external") }))
    : ctx.query.get("expired")
      ? h("p", { class: "notice" }, t("login.expired"))
      : next ? h("p", { class: "notice" }, t("login.toContinue")) : null;

  // the providers are asked for before the page is drawn: buttons appearing above the form after
  // it was drawn moved it (a layout shift: tests/e2e/web/test_web_client.py)
  const providers = linkToken ? [] : await auth.externalProviders();
  if (!ctx.isCurrent()) return;
  const external = h("div", { class: "external-signin", "data-testid": "external-signin" },
    ...providers.map((p) => h("a", {
      class: "btn btn-ghost btn-block", "data-provider": p.name,
      href: next ? `${p.loginUrl}?next=${encodeURIComponent(next)}` : p.loginUrl,
    }, t("login.continueWith", { provider: p.displayName }))));

  if (fragment && fragment.get("oidc")) {
    status.set(t("login.signingIn"));
    setBusy(form, true);
    auth.completeExternal(fragment.get("oidc")).then(
      (user) => ctx.navigate(next || (user.onboarded ? "/dashboard" : "/onboarding"), { replace: true }),
      (err) => {
        setBusy(form, false);
        status.set(err.status === 401 ? t("login.handoffExpired") : (err.detail || err.message), "error");
      });
  }

  view.append(
    h("section", { class: "container auth-page" },
      h("div", { class: "card auth-card" },
        h("h1", { id: "login-title" }, t("login.submit")),
        h("p", { class: "muted" }, t("login.welcome")),
        notice,
        external,
        form,
        h("p", { class: "switch" }, t("login.newHere"),
          h("a", { href: next ? `/auth/register?next=${encodeURIComponent(next)}` : "/auth/register" }, t("login.createAccount"))))));
}
