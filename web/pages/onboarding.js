// /onboarding: display name, bio, social links and a profile picture -> /dashboard.

import * as auth from "../auth.js";
import { t } from "../i18n.js";
import {
  avatarUploader, clearErrors, field, focusFirstInvalid, formStatus, h, revalidateOnInput, setBusy, showFieldErrors,
  socialLinksEditor, validate,
} from "../ui.js";

export const PROFILE_RULES = {
  displayName: (v) => (!v.trim() ? t("prof.enterDisplayName") : v.trim().length > 50 ? t("common.atMost50") : null),
  bio: (v) => (v.length > 500 ? t("prof.atMost500") : null),
};

// a function: the words are looked up in the language of the moment
export const PROFILE_WORDS = () => ({
  displayName: { string_too_short: t("prof.enterDisplayName"), string_too_long: t("common.atMost50") },
  bio: { string_too_long: t("prof.atMost500") },
});

export default async function onboarding(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;

  const uploader = avatarUploader({ user, upload: (file) => auth.uploadAvatar(file) });
  const fields = {
    displayName: field({ name: "displayName", label: t("common.displayName"), value: user.displayName, required: true,
      maxLength: 50, autocomplete: "nickname", hint: t("onb.displayNameHint") }),
    bio: field({ name: "bio", label: t("prof.bio"), value: user.bio, optional: true, multiline: true, rows: 4, maxLength: 500,
      hint: t("prof.bioHint") }),
  };
  const links = socialLinksEditor(user.profile && user.profile.socialLinks);
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "onboarding-title" },
    fields.displayName.root, fields.bio.root, links.root, status.el,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, t("onb.finish")),
      h("a", { class: "btn btn-ghost", href: "/dashboard" }, t("onb.skip"))));
  revalidateOnInput(fields, PROFILE_RULES);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    const okFields = validate(fields, PROFILE_RULES);
    const okLinks = links.validate();
    if (!okFields || !okLinks) {
      status.set(t("common.fixFields"), "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set(t("onb.busy"));
    try {
      await auth.onboard({
        displayName: fields.displayName.input.value.trim(),
        bio: fields.bio.input.value,
        socialLinks: links.value(),
      });
      status.set(t("onb.done"), "success");
      ctx.navigate("/dashboard");
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      links.clearErrors();
      const { shown, other } = showFieldErrors(fields, err, PROFILE_WORDS());
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
    h("section", { class: "container narrow page" },
      h("h1", { id: "onboarding-title" }, t("title.onboarding")),
      h("p", { class: "lead-small" }, t("onb.welcome", { username: user.username })),
      h("div", { class: "card" }, uploader.root, form)));
}
