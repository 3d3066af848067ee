// Small DOM helpers and form building blocks shared by the pages.
// Everything user-provided goes in through textContent or attributes, never innerHTML.

import { formatDateTime, midSentence, t } from "./i18n.js";

let idCounter = 0;
export const uid = (prefix = "id") => `${prefix}-${++idCounter}`;

const BOOLEAN_PROPS = new Set(["hidden", "disabled", "required", "checked", "selected", "multiple", "readOnly", "autofocus"]);

/**
 * h("button", {class: "btn", type: "button", onclick: fn, "aria-label": "Close"}, "×")
 * Children: strings, nodes, arrays, null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    // CSSOM, not a style attribute: the page's CSP has no 'unsafe-inline' for styles
    else if (key === "style") for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (BOOLEAN_PROPS.has(key)) el[key] = Boolean(value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Announce a message to screen readers (route changes, background results). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // a new text node on the next frame is reliably announced, even when the text repeats
  requestAnimationFrame(() => { region.textContent = message; });
}

/** "Value error, must not contain x" -> "Must not contain x." */
export function humanize(message) {
  let text = String(message || t("ui.invalidValue")).replace(/^Value error,\s*/i, "").trim();
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

// ---- fields ----------------------------------------------------------------------------------

/**
 * A labelled input with a hint and an error slot, both linked with aria-describedby.
 * @returns {{root: HTMLElement, input: HTMLInputElement|HTMLTextAreaElement|HTMLSelectElement,
 *            setError(msg: string|null): void, name: string}}
 */
export function field({
  name, label, type = "text", value = "", hint = "", optional = false, required = false,
  autocomplete, multiline = false, rows = 4, maxLength, options, attrs = {}, reveal = false,
}) {
  const id = uid(`f-${name}`);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  let input;
  if (options) {
    input = h("select", { id, name, ...attrs },
      options.map((o) => h("option", { value: o.value, selected: o.value === value, lang: o.lang }, o.label)));
  } else if (multiline) {
    input = h("textarea", { id, name, rows, maxlength: maxLength, ...attrs });
    input.value = value || "";
  } else {
    input = h("input", { id, name, type, autocomplete, maxlength: maxLength, ...attrs });
    input.value = value || "";
  }
  input.required = required;
  input.setAttribute("aria-describedby", hint ? `${hintId} ${errorId}` : errorId);

  const labelEl = h("label", { for: id }, label, optional ? h("span", { class: "optional" }, t("ui.optional")) : null);
  const hintEl = hint ? h("p", { class: "hint", id: hintId }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: errorId });

  let control = input;
  if (reveal) {
    const toggle = h("button", {
      type: "button", class: "btn btn-ghost reveal", "aria-controls": id, "aria-pressed": "false",
      "aria-label": t("ui.showLabel", { label: midSentence(label) }),
    }, t("ui.show"));
    toggle.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      toggle.textContent = show ? t("ui.hide") : t("ui.show");
      toggle.setAttribute("aria-pressed", String(show));
      toggle.setAttribute("aria-label", show ? t("ui.hideLabel", { label: midSentence(label) }) : t("ui.showLabel", { label: midSentence(label) }));
    });
    control = h("div", { class: "input-with-action" }, input, toggle);
  }

  let counter = null;
  if (multiline && maxLength) {
    counter = h("span", { class: "counter", "aria-hidden": "true" });
    const update = () => { counter.textContent = `${input.value.length} / ${maxLength}`; };
    input.addEventListener("input", update);
    update();
  }

  const root = h("div", { class: "field" }, labelEl, control,
    hintEl || counter ? h("div", { class: "field-meta" }, hintEl || h("span"), counter) : null, errorEl);

  return {
    name, root, input,
    setError(message) {
      errorEl.textContent = message || "";
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}

/** A checkbox with its label after it. */
export function checkbox({ name, label, checked = false, hint = "" }) {
  const id = uid(`f-${name}`);
  const input = h("input", { id, name, type: "checkbox", checked });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  const root = h("div", { class: "field field-check" },
    h("div", { class: "check-row" }, input, h("label", { for: id }, label)), hintEl);
  return { name, root, input, setError() {} };
}

/** The form's status line: one polite live region per form, space reserved so nothing moves. */
export function formStatus() {
  const el = h("p", { class: "form-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  return {
    el,
    set(message, kind = "info") {
      el.dataset.kind = kind;
      el.textContent = message || "";
    },
    clear() {
      el.textContent = "";
      delete el.dataset.kind;
    },
  };
}

/**
 * Show an ApiError's field errors next to their fields.
 * `friendly[field][type]` (or `friendly[field]["*"]`) replaces the server's wording.
 * @returns {{shown: number, other: string[]}} messages with no field on this form in `other`
 */
export function showFieldErrors(fields, err, friendly = {}) {
  let shown = 0;
  const other = [];
  const done = new Set();
  for (const entry of err.errors || []) {
    const f = entry.field && fields[entry.field];
    if (!f) {
      if (entry.field && !entry.field.startsWith("socialLinks")) other.push(humanize(entry.message));
      continue;
    }
    if (done.has(entry.field)) continue;
    done.add(entry.field);
    const words = friendly[entry.field] || {};
    f.setError(words[entry.type] || words["*"] || humanize(entry.message));
    shown += 1;
  }
  return { shown, other };
}

export function clearErrors(fields) {
  for (const f of Object.values(fields)) f.setError(null);
}

/** Run client-side checks; show each problem on its field. @returns {boolean} all valid */
export function validate(fields, rules) {
  let ok = true;
  for (const [name, rule] of Object.entries(rules)) {
    const f = fields[name];
    if (!f) continue;
    const message = rule(f.input.value);
    f.setError(message || null);
    if (message) ok = false;
  }
  return ok;
}

/** Re-check a field while the user fixes it, once it has been flagged. */
export function revalidateOnInput(fields, rules) {
  for (const [name, rule] of Object.entries(rules)) {
    const f = fields[name];
    if (!f) continue;
    f.input.addEventListener("input", () => {
      if (f.input.getAttribute("aria-invalid") === "true") f.setError(rule(f.input.value) || null);
    });
    f.input.addEventListener("blur", () => {
      if (f.input.value !== "") f.setError(rule(f.input.value) || null);
    });
  }
}

export function focusFirstInvalid(root) {
  const bad = root.querySelector('[aria-invalid="true"]');
  if (bad) bad.focus();
  return Boolean(bad);
}

export function setBusy(form, busy) {
  form.setAttribute("aria-busy", String(busy));
  for (const b of form.querySelectorAll('button[type="submit"]')) b.disabled = busy;
}

// ---- people ----------------------------------------------------------------------------------

function initials(user) {
  const name = (user && (user.displayName || user.username)) || "?";
  return Array.from(name.trim())[0]?.toUpperCase() || "?";
}

/** Round avatar (image, or the initial on a colour picked from the username). */
export function avatar(user, size = 32, alt = "") {
  const style = { "--size": `${size}px` };
  if (user && user.avatar) {
    return h("img", { class: "avatar", src: user.avatar, alt, width: size, height: size, decoding: "async", style });
  }
  let hue = 0;
  for (const c of (user && user.username) || "") hue = (hue * 31 + c.charCodeAt(0)) % 360;
  return h("span", { class: "avatar avatar-initial", style: { ...style, "--hue": String(hue) }, role: alt ? "img" : null,
    "aria-label": alt || null, "aria-hidden": alt ? null : "true" }, initials(user));
}

/** A user's social links as a list. Whatever the API holds, only http(s) addresses become links
 * (never javascript:, data: or anything else), and they carry rel="noopener nofollow ugc": the
 * address is user-generated, must get no ranking from us and must not reach back into this page. */
export function socialLinkList(links, label) {
  const items = Object.entries(links || {})
    .map(([name, url]) => [name, safeHttpUrl(url)])
    .filter(([, url]) => url)
    .map(([name, url]) => h("li", {},
      h("a", { href: url, rel: "noopener nofollow ugc", target: "_blank", class: "social-link", "data-external": "" }, name)));
  return items.length ? h("ul", { class: "social-links", role: "list", "aria-label": label }, items) : null;
}

/** Only http(s) links are ever rendered as links. */
export function safeHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// ---- avatar upload ---------------------------------------------------------------------------

export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
const AVATAR_TYPES = "image/jpeg,image/png,image/webp,image/gif";

const UPLOAD_WORDS = () => ({ 413: t("ui.tooLarge"), 415: t("ui.notImage") });

/** A file input drawn as a button with the catalog's words (styles.css: .file-picker); the input
 * keeps its label, focus and keyboard. */
export function filePicker(input) {
  return h("span", { class: "file-picker" }, input, h("span", { class: "file-button", "aria-hidden": "true" }, t("ui.chooseImage")));
}

/**
 * Profile picture chooser: preview right away, upload at once, show the API's 413/415/422 answers.
 * @param {{user: object, upload: (file: File) => Promise<string>}} options
 */
export function avatarUploader({ user, upload }) {
  const id = uid("avatar");
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const preview = h("div", { class: "avatar-preview" });
  const input = h("input", {
    id, name: "avatar", type: "file", accept: AVATAR_TYPES, class: "file-input",
    "aria-describedby": `${hintId} ${errorId}`,
  });
  const error = h("p", { class: "field-error", id: errorId });
  const status = h("p", { class: "upload-status", role: "status", "aria-live": "polite" });
  let current = user;
  let objectUrl = null;

  const showPreview = (src) => {
    const img = src
      ? h("img", { class: "avatar", src, alt: t("ui.yourPicture"), width: 96, height: 96, style: { "--size": "96px" } })
      : avatar(current, 96);
    preview.replaceChildren(img);
  };
  const setError = (message) => {
    error.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
  const revokeLocal = () => {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  };
  showPreview(current && current.avatar);

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
    revokeLocal();
    objectUrl = URL.createObjectURL(file);
    showPreview(objectUrl);
    preview.setAttribute("aria-busy", "true");
    status.dataset.kind = "info";
    status.textContent = t("ui.uploading");
    input.disabled = true;
    try {
      const url = await upload(file);
      current = { ...current, avatar: url };
      showPreview(url);
      status.dataset.kind = "success";
      status.textContent = t("ui.pictureUpdated");
    } catch (err) {
      showPreview(current && current.avatar);
      status.textContent = "";
      setError(UPLOAD_WORDS()[err.status] || (err.status === 422 ? humanize(err.detail) : err.detail || err.message));
    } finally {
      revokeLocal();
      preview.removeAttribute("aria-busy");
      input.disabled = false;
      input.value = "";
    }
  });

  const root = h("div", { class: "field avatar-field" },
    h("label", { for: id }, t("ui.picture")),
    h("div", { class: "avatar-row" }, preview,
      h("div", { class: "avatar-controls" }, filePicker(input),
        h("p", { class: "hint", id: hintId }, t("ui.pictureHint")),
        h("div", { class: "upload-feedback" }, error, status))));
  return { root, input };
}

// ---- social links ----------------------------------------------------------------------------

const LINK_NAME = /^[A-Za-z0-9_.-]{1,30}$/;
export const MAX_LINKS = 10;

/** Rows of (site name, URL) editing the `socialLinks` object. */
export function socialLinksEditor(initial = {}) {
  const list = h("ul", { class: "link-rows", role: "list" });
  const groupError = h("p", { class: "field-error", id: uid("links-error") });
  const addButton = h("button", { type: "button", class: "btn btn-secondary btn-small" }, t("ui.addLink"));
  const rows = [];

  const renumber = () => {
    rows.forEach((row, i) => {
      row.nameLabelNum.textContent = t("ui.linkN", { n: i + 1 });
      row.urlLabelNum.textContent = t("ui.linkN", { n: i + 1 });
      row.remove.setAttribute("aria-label", t("ui.removeLinkN", { n: i + 1 }));
    });
    addButton.disabled = rows.length >= MAX_LINKS;
  };

  const addRow = (name = "", url = "") => {
    const nameId = uid("link-name");
    const urlId = uid("link-url");
    const errorId = `${nameId}-error`;
    const nameLabelNum = h("span", { class: "visually-hidden" });
    const urlLabelNum = h("span", { class: "visually-hidden" });
    const nameInput = h("input", {
      id: nameId, type: "text", autocomplete: "off", spellcheck: "false", maxlength: 30, placeholder: "twitter",
      "aria-describedby": errorId,
    });
    nameInput.value = name;
    const urlInput = h("input", {
      id: urlId, type: "url", inputmode: "url", autocomplete: "url", placeholder: "https://…", "aria-describedby": errorId,
    });
    urlInput.value = url;
    const error = h("p", { class: "field-error", id: errorId });
    const remove = h("button", { type: "button", class: "btn btn-ghost btn-icon", title: t("ui.remove") },
      h("span", { "aria-hidden": "true" }, "×"));
    const li = h("li", { class: "link-row" },
      h("div", { class: "field" }, h("label", { for: nameId }, nameLabelNum, t("ui.site")), nameInput),
      h("div", { class: "field field-grow" }, h("label", { for: urlId }, urlLabelNum, t("ui.url")), urlInput),
      remove, error);
    const row = {
      li, nameInput, urlInput, remove, nameLabelNum, urlLabelNum,
      setError(message, which = "url") {
        error.textContent = message || "";
        for (const inp of [nameInput, urlInput]) inp.removeAttribute("aria-invalid");
        if (message) (which === "name" ? nameInput : urlInput).setAttribute("aria-invalid", "true");
      },
    };
    remove.addEventListener("click", () => {
      const index = rows.indexOf(row);
      rows.splice(index, 1);
      li.remove();
      renumber();
      const next = rows[index] || rows[index - 1];
      (next ? next.nameInput : addButton).focus();
    });
    rows.push(row);
    list.append(li);
    renumber();
    return row;
  };

  addButton.addEventListener("click", () => {
    if (rows.length < MAX_LINKS) addRow().nameInput.focus();
  });

  const entries = Object.entries(initial || {});
  if (entries.length) entries.slice(0, MAX_LINKS).forEach(([n, u]) => addRow(n, u));
  else addRow();

  const legendId = uid("links-legend");
  const root = h("fieldset", { class: "fieldset links", "aria-describedby": groupError.id },
    h("legend", { id: legendId }, t("ui.socialLinks"), h("span", { class: "optional" }, t("ui.optional"))),
    h("p", { class: "hint" }, t("ui.linksHint", { max: MAX_LINKS })),
    list, groupError, addButton);

  const filled = () => rows.filter((r) => r.nameInput.value.trim() || r.urlInput.value.trim());

  return {
    root,
    /** Client checks; @returns {boolean} */
    validate() {
      let ok = true;
      groupError.textContent = "";
      const seen = new Set();
      for (const row of rows) row.setError(null);
      for (const row of filled()) {
        const name = row.nameInput.value.trim();
        const url = row.urlInput.value.trim();
        if (!LINK_NAME.test(name)) {
          row.setError(name ? t("ui.siteNameRule") : t("ui.siteNameMissing"), "name");
          ok = false;
        } else if (seen.has(name)) {
          row.setError(t("ui.siteNameTwice"), "name");
          ok = false;
        } else if (!safeHttpUrl(url)) {
          row.setError(t("ui.fullAddress"), "url");
          ok = false;
        }
        seen.add(name);
      }
      return ok;
    },
    value() {
      const out = {};
      for (const row of filled()) out[row.nameInput.value.trim()] = row.urlInput.value.trim();
      return out;
    },
    /** Place the API's `socialLinks.<name>` errors on their rows. @returns {boolean} any shown */
    showErrors(err) {
      let any = false;
      for (const entry of err.errors || []) {
        if (!entry.field || !entry.field.startsWith("socialLinks")) continue;
        any = true;
        const rest = entry.field.slice("socialLinks".length + 1);
        const row = rows.find((r) => {
          const name = r.nameInput.value.trim();
          return rest === name || rest === `${name}.[key]`;
        });
        if (!row) {
          groupError.textContent = humanize(entry.message);
          continue;
        }
        const isKey = rest.endsWith(".[key]");
        const words = isKey ? t("ui.siteNameRule")
          : entry.type && entry.type.startsWith("url") ? t("ui.fullAddress")
            : humanize(entry.message);
        row.setError(words, isKey ? "name" : "url");
      }
      return any;
    },
    clearErrors() {
      groupError.textContent = "";
      for (const row of rows) row.setError(null);
    },
  };
}

// ---- dialogs, clipboard, times ---------------------------------------------------------------

/**
 * A modal confirmation (<dialog>: focus trapped, Escape cancels, focus returns to the opener).
 * `input` adds one text field (e.g. a reason); the promise then resolves to its value.
 * @returns {Promise<boolean|string|null>} false/null when cancelled
 */
export function confirmDialog({ title, text = "", confirmLabel = t("ui.confirm"), danger = false, input = null }) {
  const opener = document.activeElement;
  const titleId = uid("dlg-title");
  const field = input ? h("input", { type: "text", id: uid("dlg-input"), maxlength: input.maxLength || 500 }) : null;
  const confirm = h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"}`, value: "ok" }, confirmLabel);
  const cancel = h("button", { type: "button", class: "btn btn-secondary" }, t("ui.cancel"));
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId },
    h("form", { method: "dialog", class: "form" },
      h("h2", { id: titleId }, title),
      text ? h("p", {}, text) : null,
      field ? h("div", { class: "field" }, h("label", { for: field.id }, input.label), field) : null,
      h("div", { class: "form-actions" }, confirm, cancel)));
  document.body.append(dialog);
  return new Promise((resolve) => {
    let result = input ? null : false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => { result = input ? field.value.trim() : true; });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
      resolve(result);
    });
    dialog.showModal();
    (field || cancel).focus();
  });
}

/** Copy text; @returns {Promise<boolean>} */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // no clipboard API (insecure origin) or refused: the old way, through a hidden selection
    const area = h("textarea", { class: "visually-hidden", readonly: true, "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function clockTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : formatDateTime(d, { hour: "2-digit", minute: "2-digit" });
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
}

export function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : formatDateTime(d, { year: "numeric", month: "short", day: "numeric" });
}

/** A subscription tier's name (BASIC, PREMIUM, VIP) in the current language. */
export function tierName(tier) {
  return ({ BASIC: t("subs.tier.basic"), PREMIUM: t("subs.tier.premium"), VIP: t("subs.tier.vip") })[tier] || tier;
}

/** One chat badge: `subscriber:<TIER>` as the subscriber badge with its tier, any other with `words[badge]`. */
export function chatBadge(badge, words = {}) {
  const [kind, tier] = String(badge).split(":");
  if (kind === "subscriber" && tier) {
    const name = tierName(tier);
    return h("span", { class: "chat-badge chat-badge-subscriber", dataset: { tier }, title: t("chat.badge.subscriberTitle", { tier: name }) },
      t("chat.badge.subscriber", { tier: name }));
  }
  return h("span", { class: `chat-badge chat-badge-${kind}`, title: words[badge] || badge }, words[badge] || badge);
}
