// /dashboard/channel: for the channel chosen with the switcher (?channel=), its name, address, description, category, tags, visibility,
// avatar (the profile picture) and banner upload (preview at once; size and type errors shown).

import { api } from "../api.js";
import * as auth from "../auth.js";
import {
  AVATAR_MAX_BYTES, avatar, checkbox, clearErrors, field, focusFirstInvalid, formStatus, h, humanize, setBusy,
  showFieldErrors, uid,
} from "../ui.js";
import { channelShell, dashShell, noChannelNotice, pickChannel } from "./dashboard.js";

const IMAGE_TYPES = "image/jpeg,image/png,image/webp,image/gif";
const UPLOAD_WORDS = {
  413: "That image is larger than 5 MiB. Choose a smaller one.",
  415: "That file is not a supported image. Use JPEG, PNG, WebP or GIF.",
};

const CHANNEL_WORDS = {
  slug: { string_pattern_mismatch: "Use 3-40 lower-case letters, digits and “-”, starting and ending with a letter or digit." },
  category: { string_pattern_mismatch: "Use lower-case letters, digits and “-”, like “just-chatting”." },
};

function bannerUploader(channel, onUploaded) {
  const id = uid("banner");
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const preview = h("div", { class: "banner-preview" });
  const input = h("input", { id, type: "file", name: "banner", accept: IMAGE_TYPES, class: "file-input", "aria-describedby": `${hintId} ${errorId}` });
  const error = h("p", { class: "field-error", id: errorId });
  const status = h("p", { class: "upload-status", role: "status", "aria-live": "polite" });
  let current = channel.banner;
  let objectUrl = null;

  const showPreview = (src) => preview.replaceChildren(src
    ? h("img", { src, alt: "Channel banner preview", width: 640, height: 160 })
    : h("span", { class: "muted" }, "No banner yet"));
  const setError = (message) => {
    error.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
  showPreview(current);

  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    setError(null);
    status.textContent = "";
    if (file.size > AVATAR_MAX_BYTES) {
      setError(UPLOAD_WORDS[413]);
      input.value = "";
      return;
    }
    if (file.type && !IMAGE_TYPES.split(",").includes(file.type)) {
      setError(UPLOAD_WORDS[415]);
      input.value = "";
      return;
    }
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    showPreview(objectUrl);
    status.dataset.kind = "info";
    status.textContent = "Uploading…";
    input.disabled = true;
    try {
      const form = new FormData();
      form.append("file", file);
      form.append("channelId", channel.id);
      const { url } = await api.upload("/api/upload/banner", form);
      current = url;
      showPreview(url);
      status.dataset.kind = "success";
      status.textContent = "Banner updated.";
      onUploaded(url);
    } catch (err) {
      showPreview(current);
      status.textContent = "";
      setError(UPLOAD_WORDS[err.status] || (err.status === 422 ? humanize(err.detail) : err.detail));
    } finally {
      URL.revokeObjectURL(objectUrl);
      objectUrl = null;
      input.disabled = false;
      input.value = "";
    }
  });

  return h("div", { class: "field banner-field" },
    h("label", { for: id }, "Banner"),
    preview, input,
    h("p", { class: "hint", id: hintId }, "Shown on your stream page while you are offline. JPEG, PNG, WebP or GIF; up to 5 MiB; wide images work best (1600 × 400)."),
    h("div", { class: "upload-feedback" }, error, status));
}

export default async function channelEditor(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const pick = await pickChannel(user, ctx);
  if (!ctx.isCurrent()) return;
  const { channel } = pick;
  if (!channel) {
    dashShell(view, "Channel", noChannelNotice());
    return;
  }

  const fields = {
    name: field({ name: "name", label: "Channel name", value: channel.name, required: true, maxLength: 80 }),
    slug: field({ name: "slug", label: "Address", value: channel.slug, required: true, maxLength: 40,
      hint: "Your page is /streams/<address>. Changing it breaks links shared before." }),
    category: field({ name: "category", label: "Category", value: channel.category || "", optional: true, maxLength: 40 }),
    tags: field({ name: "tags", label: "Tags", value: (channel.tags || []).join(", "), optional: true,
      hint: "Up to 10, separated by commas." }),
    description: field({ name: "description", label: "Description", value: channel.description || "", optional: true,
      multiline: true, rows: 4, maxLength: 2000 }),
  };
  const isPublic = checkbox({ name: "isPublic", label: "List my channel in the directory", checked: channel.isPublic,
    hint: "When off, only people with the link find your channel." });
  const status = formStatus();

  const avatarStatus = h("p", { class: "upload-status", role: "status", "aria-live": "polite" });
  const avatarPreview = h("span", { class: "avatar-preview-small" }, avatar({ ...user, avatar: channel.avatar || user.avatar }, 56));
  const useAvatar = h("button", { type: "button", class: "btn btn-secondary btn-small", disabled: !user.avatar },
    "Use my profile picture");
  useAvatar.addEventListener("click", async () => {
    try {
      const updated = await api.put(`/api/channels/${encodeURIComponent(channel.id)}`, { avatar: user.avatar });
      avatarPreview.replaceChildren(avatar({ ...user, avatar: updated.avatar }, 56));
      avatarStatus.dataset.kind = "success";
      avatarStatus.textContent = "Channel avatar updated.";
    } catch (err) {
      avatarStatus.dataset.kind = "error";
      avatarStatus.textContent = err.detail;
    }
  });

  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "channel-form-title" },
    h("h2", { id: "channel-form-title" }, "Details"),
    fields.name.root, fields.slug.root, h("div", { class: "two-col" }, fields.category.root, fields.tags.root),
    fields.description.root, isPublic.root, status.el,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Save channel"),
      h("a", { class: "btn btn-ghost", href: `/streams/${encodeURIComponent(channel.slug)}` }, "View channel")));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    status.clear();
    const tags = fields.tags.input.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (!fields.name.input.value.trim()) fields.name.setError("Give your channel a name.");
    if (tags.length > 10) fields.tags.setError("Use at most 10 tags.");
    if (focusFirstInvalid(form)) {
      status.set("Please fix the highlighted fields.", "error");
      return;
    }
    setBusy(form, true);
    try {
      const updated = await api.put(`/api/channels/${encodeURIComponent(channel.id)}`, {
        name: fields.name.input.value.trim(),
        slug: fields.slug.input.value.trim(),
        category: fields.category.input.value.trim() || null,
        tags,
        description: fields.description.input.value.trim() || null,
        isPublic: isPublic.input.checked,
      });
      Object.assign(channel, updated);
      const option = view.querySelector(`.channel-select option[value="${CSS.escape(channel.id)}"]`);
      if (option) option.textContent = channel.isLive ? `${channel.name} (live)` : channel.name;
      status.set("Your channel is saved.", "success");
    } catch (err) {
      if (err.status === 409) fields.slug.setError("This address is taken. Choose another one.");
      // tags arrive as tags.<n>: show them on the tags field
      for (const entry of err.errors) if (entry.field && entry.field.startsWith("tags.")) fields.tags.setError(humanize(entry.message));
      const { shown } = showFieldErrors(fields, err, CHANNEL_WORDS);
      status.set(shown || err.status === 409 || form.querySelector("[aria-invalid=true]") ? "Please fix the highlighted fields." : err.detail, "error");
      focusFirstInvalid(form);
    } finally {
      setBusy(form, false);
    }
  });

  channelShell(view, "Channel", pick, ctx,
    h("div", { class: "card form-card" },
      bannerUploader(channel, (url) => { channel.banner = url; }),
      h("div", { class: "field avatar-field" },
        h("span", { class: "label" }, "Channel avatar"),
        h("div", { class: "avatar-row" }, avatarPreview,
          h("div", { class: "avatar-controls" }, useAvatar,
            h("p", { class: "hint" }, "Your channel shows your profile picture. Change it on the ", h("a", { href: "/dashboard/profile" }, "profile page"), "."),
            avatarStatus))),
      form));
}
