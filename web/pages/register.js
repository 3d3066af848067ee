// /auth/register: email, username, password, optional display name -> /onboarding.

import * as auth from "../auth.js";
import { language, t } from "../i18n.js";
import {
  clearErrors, field, focusFirstInvalid, formStatus, h, revalidateOnInput, setBusy, showFieldErrors, validate,
} from "../ui.js";

export const USERNAME = /^[a-z0-9_]{3,25}$/;

export const RULES = {
  email: (v) => (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.trim()) ? null : t("reg.emailRule")),
  username: (v) => {
    if (/[A-Z]/.test(v)) return t("reg.noCapitals");
    if (v.length < 3 || v.length > 25) return t("reg.usernameLength");
    return USERNAME.test(v) ? null : t("reg.usernameChars");
  },
  password: (v) => (v.length < 8 ? t("reg.atLeast8") : v.length > 128 ? t("reg.atMost128") : null),
  displayName: (v) => (v.trim().length > 50 ? t("common.atMost50") : null),
};

// a function: the words are looked up in the language of the moment
const FRIENDLY = () => ({
  email: { conflict: t("reg.emailTaken"), "*": t("reg.emailInvalid") },
  username: {
    conflict: t("reg.usernameTaken"),
    string_pattern_mismatch: t("reg.usernamePattern"),
    string_too_short: t("reg.usernameLength"),
    string_too_long: t("reg.usernameLength"),
  },
  password: { string_too_short: t("reg.atLeast8"), string_too_long: t("reg.atMost128") },
});

export default function register(view, ctx) {
  const fields = {
    email: field({ name: "email", label: t("reg.email"), type: "email", autocomplete: "email", required: true,
      attrs: { inputmode: "email", spellcheck: "false", autocapitalize: "none" } }),
    username: field({ name: "username", label: t("reg.username"), autocomplete: "username", required: true, maxLength: 25,
      hint: t("reg.usernameHint"),
      attrs: { autocapitalize: "none", spellcheck: "false" } }),
    password: field({ name: "password", label: t("reg.password"), type: "password", autocomplete: "new-password",
      required: true, maxLength: 128, hint: t("reg.passwordHint"), reveal: true }),
    displayName: field({ name: "displayName", label: t("common.displayName"), optional: true, autocomplete: "nickname",
      maxLength: 50, hint: t("reg.displayNameHint") }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "register-title" },
    Object.values(fields).map((f) => f.root),
    status.el,
    h("button", { type: "submit", class: "btn btn-primary btn-block" }, t("reg.submit")));
  revalidateOnInput(fields, RULES);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    if (!validate(fields, RULES)) {
      status.set(t("common.fixFields"), "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set(t("reg.busy"));
    try {
      await auth.register({
        email: fields.email.input.value.trim(),
        username: fields.username.input.value,
        password: fields.password.input.value,
        displayName: fields.displayName.input.value.trim(),
        language: language(),
      });
      status.set(t("reg.done"), "success");
      ctx.navigate("/onboarding");
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      const { shown, other } = showFieldErrors(fields, err, FRIENDLY());
      if (shown) {
        status.set(other[0] || t("common.fixFields"), "error");
        focusFirstInvalid(form);
      } else if (err.status === 409) {
        // a conflict without a field (lost a race): the detail names it
        const which = /email/i.test(err.detail) ? "email" : "username";
        fields[which].setError(FRIENDLY()[which].conflict);
        status.set(err.detail, "error");
        focusFirstInvalid(form);
      } else if (err.status === 429) {
        status.set(err.retryAfter ? t("reg.tooMany", { n: Math.ceil(err.retryAfter / 60) })
          : err.detail, "error");
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  view.append(
    h("section", { class: "container auth-page" },
      h("div", { class: "card auth-card" },
        h("h1", { id: "register-title" }, t("title.register")),
        h("p", { class: "muted" }, t("reg.lead")),
        form,
        h("p", { class: "switch" }, t("reg.haveAccount"), h("a", { href: "/auth/login" }, t("nav.login"))))));
}
