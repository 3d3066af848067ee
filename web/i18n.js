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

/** t() for a sentence with elements in it: "{link}" placeholders may be DOM nodes (a link, a <time>);
 * -> an array of strings and nodes for h() (the words around them stay in the language's order). */
export function tx(key, params = {}) {
  return t(key).split(/(\{\w+\})/).filter((part) => part !== "").map((part) => {
    const name = /^\{(\w+)\}$/.exec(part);
    return name && name[1] in params ? params[name[1]] : part;
  });
}

/** Plural forms by the language's rules: the catalog has "key.one", "key.other" (and more). */
export function tn(key, count, params = {}) {
  const form = new Intl.PluralRules(current).select(Number(count) || 0);
  const full = `${key}.${form}`;
  return t(CATALOGS[current][full] !== undefined || en[full] !== undefined ? full : `${key}.other`, { count, ...params });
}

export function formatNumber(n, options) {
  return new Intl.NumberFormat(current, options).format(Number(n) || 0);
}

/** 1234 -> "1.2K" (en) / "1234" (de), 1500000 -> "1.5M" / "1,5 Mio." */
export function formatCompact(n) {
  return formatNumber(n, { notation: "compact" });
}

/** 3, "second" -> "3 seconds" / "3 Sekunden" (unit: second, minute, hour, day, week) */
export function formatUnit(n, unit) {
  return formatNumber(n, { style: "unit", unit, unitDisplay: "long" });
}

function date(value) {
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A date or time in the active language; options as Intl.DateTimeFormat's. "" for an invalid date. */
export function formatDateTime(value, options = { dateStyle: "medium", timeStyle: "short" }) {
  const d = date(value);
  return d ? dateTimeFormat(options).format(d) : "";
}

// Making an Intl.DateTimeFormat costs far more than formatting with one (a chat row's clock time
// was 6 % of a busy room's rendering); one per language and options, made again after a switch
const formats = new Map();
function dateTimeFormat(options) {
  const key = `${current} ${JSON.stringify(options)}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(current, options);
    formats.set(key, format);
  }
  return format;
}

const UNITS = [["year", 31_536_000], ["month", 2_592_000], ["week", 604_800], ["day", 86_400], ["hour", 3600], ["minute", 60], ["second", 1]];

/** "5 minutes ago" / "vor 5 Minuten", "in 2 hours" / "in 2 Stunden", "now" / "jetzt" */
export function relativeTime(value, now = Date.now()) {
  const d = date(value);
  if (!d) return "";
  const seconds = Math.round((d.getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(current, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return format.format(Math.abs(seconds) < 10 && unit === "second" ? 0 : Math.trunc(seconds / size), unit);
    }
  }
  return "";
}

// languages whose nouns keep their capital in the middle of a sentence ("Stream key" -> "Copy
// stream key", but "Streamschlüssel kopieren")
const KEEPS_CASE = new Set(["de"]);

/** A field label as it reads inside a sentence or an aria-label: lower case in English, unless it
 * starts with an abbreviation ("RTMP URL"). */
export function midSentence(label) {
  return KEEPS_CASE.has(current) || /^[A-Z]{2,}/.test(label) ? label : label.toLowerCase();
}

/** A language's name in that language ("de" -> "Deutsch"), for the language picker. */
export function languageName(tag) {
  try {
    const name = new Intl.DisplayNames([tag], { type: "language" }).of(tag);
    return name.charAt(0).toLocaleUpperCase(tag) + name.slice(1);
  } catch {
    return tag;
  }
}
