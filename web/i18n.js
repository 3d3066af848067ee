// The message catalog: every string a translated page shows comes from t()/tn().
// The language is the signed-in user's `profile.language`, else the browser's; a BCP 47 tag with
// no catalog of its own falls back to its primary subtag (de-AT -> de), then to English.

import en from "./i18n/en.js";
import de from "./i18n/de.js";

const CATALOGS = { en, de };
export const SUPPORTED = Object.keys(CATALOGS);
let current = "en";

/** The catalog language for a BCP 47 tag (or a list of them, best first). */
export function pick(tags) {
  for (const tag of [].concat(tags || [])) {
    if (typeof tag !== "string" || !tag) continue;
    const lower = tag.toLowerCase();
    if (CATALOGS[lower]) return lower;
    const primary = lower.split("-")[0];
    if (CATALOGS[primary]) return primary;
  }
  return "en";
}

export function language() {
  return current;
}

/** Switch the catalog; true when it changed. <html lang> follows, for screen readers and hyphenation. */
export function setLanguage(tags) {
  const next = pick(tags);
  document.documentElement.lang = next;
  if (next === current) return false;
  current = next;
  return true;
}

/** The user's choice when signed in, else the browser's languages. */
export function preferred(user) {
  const chosen = user && user.profile && user.profile.language;
  return chosen ? [chosen] : navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
}

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (m, name) => (params && name in params ? String(params[name]) : m));
}

/** t("key", {name: "x"}) -> the current language's text with {name} filled in. */
export function t(key, params) {
  const text = CATALOGS[current][key] ?? en[key];
  if (text === undefined) {
    console.warn(`i18n: no message "${key}"`);
    return key;
  }
  return fill(text, params);
}

/** Plural forms by the language's rules: the catalog has "key.one", "key.other" (and more). */
export function tn(key, count, params = {}) {
  const form = new Intl.PluralRules(current).select(Number(count) || 0);
  const full = `${key}.${form}`;
  return t(CATALOGS[current][full] !== undefined || en[full] !== undefined ? full : `${key}.other`, { count, ...params });
}

export function formatNumber(n) {
  return new Intl.NumberFormat(current).format(Number(n) || 0);
}
