// /dashboard/channel: for the channel chosen with the switcher (?channel=), its name, address, description, category, tags, visibility,
// avatar (the profile picture) and banner upload (preview at once; size and type errors shown).

import { api } from "../api.js";
import * as auth from "../auth.js";
import { t, tx } from "../i18n.js";
import {
  AVATAR_MAX_BYTES, avatar, checkbox, clearErrors, field, filePicker, focusFirstInvalid, formStatus, h, humanize, setBusy,
  showFieldErrors, uid,
} from "../ui.js";
import { channelShell, dashShell, noChannelNotice, pickChannel } from "./dashboard.js";

const IMAGE_TYPES = "image/jpeg,image/png,image/webp,image/gif";
const UPLOAD_WORDS = () => ({ 413: t("ui.tooLarge"), 415: t("ui.notImage") });

const CHANNEL_WORDS = () => ({
  slug: { string_pattern_mismatch: t("chan.slugPattern") },
  category: { string_pattern_mismatch: t("chan.categoryPattern") },
});

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
    ? h("img", { src, alt: t("chan.bannerPreview"), width: 640, height: 160 })
    : h("span", { class: "muted" }, t("chan.noBanner")));
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
      setError(UPLOAD_WORDS()[413]);
      input.value = "";
      return;
    }
    if (file.type && !IMAGE_TYPES.split(",").includes(file.type)) {
      setError(UPLOAD_WORDS()[415]);
      input.value = "";
      return;
    }
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    showPreview(objectUrl);
    status.dataset.kind = "info";
    status.textContent = t("ui.uploading");
    input.disabled = true;
    try {
      const form = new FormData();
      form.append("file", file);
      form.append("channelId", channel.id);
      const { url } = await api.upload("/api/upload/banner", form);
      current = url;
      showPreview(url);
      status.dataset.kind = "success";
      status.textContent = t("chan.bannerUpdated");
      onUploaded(url);
    } catch (err) {
      showPreview(current);
      status.textContent = "";
      setError(UPLOAD_WORDS()[err.status] || (err.status === 422 ? humanize(err.detail) : err.detail));
    } finally {
      URL.revokeObjectURL(objectUrl);
      objectUrl = null;
      input.disabled = false;
      input.value = "";
    }
  });

  return h("div", { class: "field banner-field" },
    h("label", { for: id }, t("chan.banner")),
    preview, filePicker(input),
    h("p", { class: "hint", id: hintId }, t("chan.bannerHint")),
    h("div", { class: "upload-feedback" }, error, status));
}

export default async function channelEditor(view, ctx) {
  const user = await auth.loadUser();
  if (!ctx.isCurrent()) return;
  const pick = await pickChannel(user, ctx);
  if (!ctx.isCurrent()) return;
  const { channel } = pick;
  if (!channel) {
    dashShell(view, t("title.channel"), noChannelNotice());
    return;
  }

  const fields = {
    name: field({ name: "name", label: t("chan.name"), value: channel.name, required: true, maxLength: 80 }),
    slug: field({ name: "slug", label: t("chan.slug"), value: channel.slug, required: true, maxLength: 40,
      hint: t("chan.slugHint") }),
    category: field({ name: "category", label: t("chan.category"), value: channel.category || "", optional: true, maxLength: 40 }),
    tags: field({ name: "tags", label: t("chan.tags"), value: (channel.tags || []).join(", "), optional: true,
      hint: t("chan.tagsHint") }),
    description: field({ name: "description", label: t("chan.description"), value: channel.description || "", optional: true,
      multiline: true, rows: 4, maxLength: 2000 }),
  };
  const isPublic = checkbox({ name: "isPublic", label: t("chan.public"), checked: channel.isPublic,
    hint: t("chan.publicHint") });
  const status = formStatus();

  const avatarStatus = h("p", { class: "upload-status", role: "status", "aria-live": "polite" });
  const avatarPreview = h("span", { class: "avatar-preview-small" }, avatar({ ...user, avatar: channel.avatar || user.avatar }, 56));
  const useAvatar = h("button", { type: "button", class: "btn btn-secondary btn-small", disabled: !user.avatar },
    t("chan.useAvatar"));
  useAvatar.addEventListener("click", async () => {
    try {
      const updated = await api.put(`/api/channels/${encodeURIComponent(channel.id)}`, { avatar: user.avatar });
      avatarPreview.replaceChildren(avatar({ ...user, avatar: updated.avatar }, 56));
      avatarStatus.dataset.kind = "success";
      avatarStatus.textContent = t("chan.avatarUpdated");
    } catch (err) {
      avatarStatus.dataset.kind = "error";
      avatarStatus.textContent = err.detail;
    }
  });

  const form = h("form", { class: "form", novalidate: true, "aria-labelledby": "channel-form-title" },
    h("h2", { id: "channel-form-title" }, t("chan.details")),
    fields.name.root, fields.slug.root, h("div", { class: "two-col" }, fields.category.root, fields.tags.root),
    fields.description.root, isPublic.root, status.el,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, t("chan.save")),
      h("a", { class: "btn btn-ghost", href: `/streams/${encodeURIComponent(channel.slug)}` }, t("chan.view"))));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(fields);
    status.clear();
    const tags = fields.tags.input.value.split(",").map((tag) => tag.trim()).filter(Boolean);
    if (!fields.name.input.value.trim()) fields.name.setError(t("chan.nameMissing"));
    if (tags.length > 10) fields.tags.setError(t("chan.tooManyTags"));
    if (focusFirstInvalid(form)) {
      status.set(t("common.fixFields"), "error");
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
      if (option) option.textContent = channel.isLive ? t("dash.channelLive", { name: channel.name }) : channel.name;
      status.set(t("chan.saved"), "success");
    } catch (err) {
      if (err.status === 409) fields.slug.setError(t("chan.slugTaken"));
      // tags arrive as tags.<n>: show them on the tags field
      for (const entry of err.errors) if (entry.field && entry.field.startsWith("tags.")) fields.tags.setError(humanize(entry.message));
      const { shown } = showFieldErrors(fields, err, CHANNEL_WORDS());
      status.set(shown || err.status === 409 || form.querySelector("[aria-invalid=true]") ? t("common.fixFields") : err.detail, "error");
      focusFirstInvalid(form);
    } finally {
      setBusy(form, false);
    }
  });

  channelShell(view, t("title.channel"), pick, ctx,
    h("div", { class: "card form-card" },
      bannerUploader(channel, (url) => { channel.banner = url; }),
      h("div", { class: "field avatar-field" },
        h("span", { class: "label" }, t("chan.avatar")),
        h("div", { class: "avatar-row" }, avatarPreview,
          h("div", { class: "avatar-controls" }, useAvatar,
            h("p", { class: "hint" }, tx("chan.avatarHint", { link: h("a", { href: "/dashboard/profile" }, t("chan.profilePage")) })),
            avatarStatus))),
      form));
}
