// /dashboard/profile: display name, bio, social links, theme, language, notification email, avatar.

import * as auth from "../auth.js";
import { SUPPORTED, language, languageName, t } from "../i18n.js";
import {
  avatarUploader, clearErrors, field, focusFirstInvalid, formStatus, h, revalidateOnInput, setBusy,
  showFieldErrors, socialLinksEditor, validate,
} from "../ui.js";
import { dashboardNav } from "./dashboard.js";
import { PROFILE_RULES, PROFILE_WORDS } from "./onboarding.js";

const THEMES = () => [
  { value: "dark", label: t("prof.themeDark") },
  { value: "light", label: t("prof.themeLight") },
  { value: "system", label: t("prof.themeSystem") },
];

// the languages the site has a catalog for (i18n.js), each named in itself ("Deutsch")
const LANGUAGES = () => SUPPORTED.map((tag) => [tag, languageName(tag)]);

const RULES = {
  ...PROFILE_RULES,
  notificationEmail: (v) => (v.trim() && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.trim()) ? t("prof.notAnAddress") : null),
};
const WORDS = () => ({ ...PROFILE_WORDS(), notificationEmail: { string_pattern_mismatch: t("prof.notAnAddress") } });

// "saved" for the page drawn again in the language just chosen (the save re-renders it)
let savedNotice = null;

export default async function profile(view, ctx) {
  const user = await auth.loadUser({ force: true });
  if (!ctx.isCurrent()) return;
  const prefs = user.profile || {};

  const languages = LANGUAGES().map(([value, label]) => ({ value, label, lang: value }));
  if (prefs.language && !languages.some((l) => l.value === prefs.language)) {
    languages.push({ value: prefs.language, label: prefs.language });
  }

  const uploader = avatarUploader({ user, upload: (file) => auth.uploadAvatar(file) });
  const fields = {
    displayName: field({ name: "displayName", label: t("common.displayName"), value: user.displayName, required: true,
      maxLength: 50, autocomplete: "nickname", hint: t("prof.displayNameHint") }),
    bio: field({ name: "bio", label: t("prof.bio"), value: user.bio, optional: true, multiline: true, rows: 4, maxLength: 500,
      hint: t("prof.bioHint") }),
    theme: field({ name: "theme", label: t("prof.theme"), value: prefs.theme || "dark", options: THEMES() }),
    language: field({ name: "language", label: t("prof.language"), value: prefs.language || "en", options: languages,
      hint: t("prof.languageHint") }),
    // an address, or empty for none (API.md: notificationEmail is an e-mail address or null)
    notificationEmail: field({ name: "notificationEmail", label: t("prof.notificationEmail"), type: "email", optional: true,
      value: prefs.notificationEmail || "", maxLength: 254, autocomplete: "email",
      hint: t("prof.notificationEmailHint", { email: user.email }) }),
  };
  const links = socialLinksEditor(prefs.socialLinks);
  const status = formStatus();

  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "profile-title" },
    h("fieldset", { class: "fieldset" }, h("legend", {}, t("prof.publicProfile")), fields.displayName.root, fields.bio.root),
    links.root,
    h("fieldset", { class: "fieldset" }, h("legend", {}, t("prof.preferences")),
      h("div", { class: "two-col" }, fields.theme.root, fields.language.root), fields.notificationEmail.root),
    status.el,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, t("prof.save"))));
  if (savedNotice) {
    status.set(savedNotice, "success");
    savedNotice = null;
  }
  revalidateOnInput(fields, RULES);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    const okFields = validate(fields, RULES);
    const okLinks = links.validate();
    if (!okFields || !okLinks) {
      status.set(t("common.fixFields"), "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set(t("prof.busy"));
    const before = language();
    try {
      await auth.updateProfile({
        displayName: fields.displayName.input.value.trim(),
        bio: fields.bio.input.value,
        socialLinks: links.value(),
        theme: fields.theme.input.value,
        language: fields.language.input.value,
        notificationEmail: fields.notificationEmail.input.value.trim() || null,
      });
      setBusy(form, false);
      status.set(t("prof.saved"), "success");
      if (language() !== before) savedNotice = t("prof.saved");
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      links.clearErrors();
      const { shown, other } = showFieldErrors(fields, err, WORDS());
      const linkErrors = links.showErrors(err);
      if (shown || linkErrors) {
        status.set(other[0] || t("common.fixFields"), "error");
        focusFirstInvalid(form);
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  view.append(
    h("div", { class: "container dash" },
      dashboardNav(),
      h("div", { class: "dash-main" },
        h("h1", { id: "profile-title" }, t("title.profile")),
        h("p", { class: "muted" }, t("prof.signedInAs"), h("strong", {}, `@${user.username}`), ` (${user.email}) · `,
          h("a", { href: `/users/${encodeURIComponent(user.username)}` }, t("prof.viewPublic"))),
        h("div", { class: "card form-card" }, uploader.root, form))));
}
