// /onboarding: display name, bio, social links and a profile picture -> /dashboard.

import * as auth from "../auth.js";
import {
  avatarUploader, clearErrors, field, focusFirstInvalid, formStatus, h, revalidateOnInput, setBusy, showFieldErrors,
  socialLinksEditor, validate,
} from "../ui.js";

export const PROFILE_RULES = {
  displayName: (v) => (!v.trim() ? "Enter a display name." : v.trim().length > 50 ? "Use at most 50 characters." : null),
  bio: (v) => (v.length > 500 ? "Use at most 500 characters." : null),
};

export const PROFILE_WORDS = {
  displayName: { string_too_short: "Enter a display name.", string_too_long: "Use at most 50 characters." },
  bio: { string_too_long: "Use at most 500 characters." },
};

export default async function onboarding(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;

  const uploader = avatarUploader({ user, upload: (file) => auth.uploadAvatar(file) });
  const fields = {
    displayName: field({ name: "displayName", label: "Display name", value: user.displayName, required: true,
      maxLength: 50, autocomplete: "nickname", hint: "How viewers see you: on your channels, in chat and in the directory." }),
    bio: field({ name: "bio", label: "Bio", value: user.bio, optional: true, multiline: true, rows: 4, maxLength: 500,
      hint: "A few words about you and what you stream." }),
  };
  const links = socialLinksEditor(user.profile && user.profile.socialLinks);
  const status = formStatus();
  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "onboarding-title" },
    fields.displayName.root, fields.bio.root, links.root, status.el,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Finish setup"),
      h("a", { class: "btn btn-ghost", href: "/dashboard" }, "Skip for now")));
  revalidateOnInput(fields, PROFILE_RULES);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.clear();
    const okFields = validate(fields, PROFILE_RULES);
    const okLinks = links.validate();
    if (!okFields || !okLinks) {
      status.set("Please fix the highlighted fields.", "error");
      focusFirstInvalid(form);
      return;
    }
    setBusy(form, true);
    status.set("Saving your profile…");
    try {
      await auth.onboard({
        displayName: fields.displayName.input.value.trim(),
        bio: fields.bio.input.value,
        socialLinks: links.value(),
      });
      status.set("Profile saved.", "success");
      ctx.navigate("/dashboard");
    } catch (err) {
      setBusy(form, false);
      clearErrors(fields);
      links.clearErrors();
      const { shown, other } = showFieldErrors(fields, err, PROFILE_WORDS);
      const linkErrors = links.showErrors(err);
      if (shown || linkErrors) {
        status.set(other[0] || "Please fix the highlighted fields.", "error");
        focusFirstInvalid(form);
      } else {
        status.set(err.detail || err.message, "error");
      }
    }
  });

  view.append(
    h("section", { class: "container narrow page" },
      h("h1", { id: "onboarding-title" }, "Set up your profile"),
      h("p", { class: "lead-small" }, `Welcome, @${user.username}! Tell viewers who you are. You can change all of this later.`),
      h("div", { class: "card" }, uploader.root, form)));
}
