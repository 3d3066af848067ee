// /auth/register: email, username, password, optional display name -> /onboarding.

import * as auth from "../auth.js";
import {
  clearErrors, field, focusFirstInvalid, formStatus, h, revalidateOnInput, setBusy, showFieldErrors, validate,
} from "../ui.js";

export const USERNAME = /^[a-z0-9_]{3,25}$/;

export const RULES = {
  email: (v) => (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.trim()) ? null : "Enter an email address like you@example.com."),
  username: (v) => {
    if (/[A-Z]/.test(v)) return "Use lower-case letters only: capitals are not allowed in usernames.";
    if (v.length < 3 || v.length > 25) return "Usernames are 3 to 25 characters long.";
    return USERNAME.test(v) ? null : "Use only lower-case letters, digits and underscores (_).";
  },
  password: (v) => (v.length < 8 ? "Use at least 8 characters." : v.length > 128 ? "Use at most 128 characters." : null),
  displayName: (v) => (v.trim().length > 50 ? "Use at most 50 characters." : null),
};

const FRIENDLY = {
  email: { conflict: "An account with this email already exists. Log in instead?", "*": "Enter a valid email address." },
  username: {
    conflict: "That username is taken. Try another one.",
    string_pattern_mismatch: "Use only lower-case letters, digits and underscores (_); no capitals or spaces.",
    string_too_short: "Usernames are 3 to 25 characters long.",
    string_too_long: "Usernames are 3 to 25 characters long.",
  },
  password: { string_too_short: "Use at least 8 characters.", string_too_long: "Use at most 128 characters." },
};

export default function register(view, ctx) {
  const fields = {
    email: field({ name: "email", label: "Email", type: "email", autocomplete: "email", required: true,
      attrs: { inputmode: "email", spellcheck: "false", autocapitalize: "none" } }),
    username: field({ name: "username", label: "Username", autocomplete: "username", required: true, maxLength: 25,
      hint: "3–25 characters: lower-case letters, digits and _. It is your address on the site.",
      attrs: { autocapitalize: "none", spellcheck: "false" } }),
    password: field({ name: "password", label: "Password", type: "password", autocomplete: "new-password",
      required: true, maxLength: 128, hint: "8–128 characters.", reveal: true }),
    displayName: field({ name: "displayName", label: "Display name", optional: true, autocomplete: "nickname",
      maxLength: 50, hint: "Shown on your channel and in chat. Defaults to your username." }),
  };
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "register-title" },
    Object.values(fields).map((f) => f.root),
    status.el,
    h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Create account"));
  revalidateOnInput(fields, RULES);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    if (!validate(fields, RULES)) {
      status.set("Please fix the highlighted fields.", "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set("Creating your account…");
    try {
      await auth.register({
        email: fields.email.input.value.trim(),
        username: fields.username.input.value,
        password: fields.password.input.value,
        displayName: fields.displayName.input.value.trim(),
      });
      status.set("Account created.", "success");
      ctx.navigate("/onboarding");
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      const { shown, other } = showFieldErrors(fields, err, FRIENDLY);
      if (shown) {
        status.set(other[0] || "Please fix the highlighted fields.", "error");
        focusFirstInvalid(form);
      } else if (err.status === 409) {
        // a conflict without a field (lost a race): the detail names it
        const which = /email/i.test(err.detail) ? "email" : "username";
        fields[which].setError(FRIENDLY[which].conflict);
        status.set(err.detail, "error");
        focusFirstInvalid(form);
      } else if (err.status === 429) {
        status.set(err.retryAfter ? `Too many sign-ups from this network. Try again in ${Math.ceil(err.retryAfter / 60)} min.`
          : err.detail, "error");
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  view.append(
    h("section", { class: "container auth-page" },
      h("div", { class: "card auth-card" },
        h("h1", { id: "register-title" }, "Create your account"),
        h("p", { class: "muted" }, "Stream, chat and follow channels."),
        form,
        h("p", { class: "switch" }, "Already have an account? ", h("a", { href: "/auth/login" }, "Log in")))));
}
