"""The web client's message catalog (web/i18n.js, web/i18n/*.js) under Node: German is complete
(the same keys as English, none left empty or untranslated by mistake), every key the client asks
for exists and every key in the catalog is asked for, placeholders match between languages, BCP 47
tags pick their catalog, and numbers, dates and relative times follow the language.

And no English left in the code: every string literal of web/*.js and web/pages/*.js that reads
like words for people (a capitalised word, a sentence, a fragment glued to others, "{n} seconds")
must go through t()/tn()/tx(); the few that are names or protocol words are in ALLOWED below.
index.html's text and aria-labels carry data-i18n / data-i18n-label.
The pages themselves switching language are in tests/e2e/web/test_i18n_pages.py and
test_profile_pages.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
# errors.js reports errors to the operators' error tracker (Sentry's envelope fields), never to people
CODE = sorted(p for p in [*WEB.glob("*.js"), *WEB.glob("pages/*.js")] if p.name != "errors.js")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (make setup installs it)")

# literals that read like words but are not for translation: product and brand names, HTTP header
# names, key names (KeyboardEvent.key)
ALLOWED = {"Streamplatform", "Mux", "Cloudflare Stream", "Accept", "Authorization", "Bearer {}", "Escape",
           "ArrowDown", "ArrowUp"}


def node(script: str) -> dict:
    out = subprocess.run(["node", "--input-type=module", "-e", script], check=False, capture_output=True, text=True,
                         timeout=30, cwd=WEB)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def catalogs() -> dict:
    return node(f"""
import en from "{(WEB / 'i18n/en.js').as_uri()}";
import de from "{(WEB / 'i18n/de.js').as_uri()}";
console.log(JSON.stringify({{en, de}}));""")


# ---- the keys ------------------------------------------------------------------------------------

def used_keys() -> set[str]:
    """Every key the client asks for: t("k") and tx("k") (k), tn("k", n) (k.one and k.other), the
    routes' titles, index.html's data-i18n and data-i18n-label."""
    used = set()
    for path in CODE:
        for text, _, before in string_literals(path.read_text()):  # the first argument, comments skipped
            if before[-2:] in (("t", "("), ("tx", "(")):
                used.add(text)
            elif before[-2:] == ("tn", "("):
                used |= {f"{text}.one", f"{text}.other"}
    used |= set(re.findall(r"title: \"(title\.[^\"]+)\"", (WEB / "app.js").read_text()))
    used |= set(re.findall(r"data-i18n(?:-label)?=\"([^\"]+)\"", (WEB / "index.html").read_text()))
    return used


@needs_node
def test_german_has_every_english_key_with_the_same_placeholders():
    cats = catalogs()
    assert sorted(cats["en"].keys() - cats["de"].keys()) == []  # only in English
    assert sorted(cats["de"].keys() - cats["en"].keys()) == []  # only in German
    for key, text in cats["en"].items():
        assert cats["de"][key].strip(), key
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", cats["de"][key])), key
    # a catalog copied without translating is not complete: most sentences must differ
    sentences = [k for k, v in cats["en"].items() if len(v.split()) >= 3]
    same = [k for k in sentences if cats["en"][k] == cats["de"][k]]
    assert not same, same


@needs_node
def test_every_key_the_client_uses_is_in_the_catalog_and_every_key_is_used():
    en = catalogs()["en"]
    used = used_keys()
    assert len(used) > 300, "too few keys found: the patterns above are wrong"
    assert sorted(used - en.keys()) == []
    # a key no code asks for is a leftover (or asked for in a way the test cannot see: keep keys literal)
    plural_forms = {k for k in en if re.search(r"\.(zero|one|two|few|many)$", k)}
    assert sorted(en.keys() - used - plural_forms) == []


# ---- English left in the code ------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(r"\d[\w.]*")
_PUNCT = ("===", "!==", "...", "&&=", "||=", "??=", "=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++",
          "--", "+=", "-=", "*=", "/=", "%=", "**")
_BEFORE_REGEX = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do",
                 "else", "yield", "await"}


def string_literals(src: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """A small JavaScript tokenizer: every string and template literal (a template's ${...} parts
    become "{}", and the literals inside them are listed too) as (text, line, the 4 tokens before
    it). Comments and regular expression literals are skipped."""
    out: list[tuple[str, int, tuple[str, ...]]] = []
    n = len(src)

    def skip_string(i: int) -> int:
        quote = src[i]
        i += 1
        while i < n and src[i] != quote:
            i += 2 if src[i] == "\\" else 1
        return i + 1

    def read_template(i: int) -> tuple[int, str, list[tuple[int, int]]]:
        i += 1
        text, parts = [], []
        while i < n:
            c = src[i]
            if c == "\\":
                text.append(src[i:i + 2])
                i += 2
            elif c == "`":
                return i + 1, "".join(text), parts
            elif src.startswith("${", i):
                depth, j = 1, i + 2
                while j < n and depth:
                    if src[j] in "\"'":
                        j = skip_string(j)
                        continue
                    if src[j] == "`":
                        j = read_template(j)[0]
                        continue
                    depth += {"{": 1, "}": -1}.get(src[j], 0)
                    j += 1
                parts.append((i + 2, j - 1))
                text.append("{}")
                i = j
            else:
                text.append(c)
                i += 1
        raise ValueError("unterminated template literal")

    def scan(i: int, end: int, tokens: list[str]) -> None:
        while i < end:
            c = src[i]
            if c.isspace():
                i += 1
            elif src.startswith("//", i):
                j = src.find("\n", i)
                i = end if j < 0 else j
            elif src.startswith("/*", i):
                i = src.index("*/", i) + 2
            elif c in "\"'":
                j = skip_string(i)
                out.append((src[i + 1:j - 1], src.count("\n", 0, i) + 1, tuple(tokens[-4:])))
                tokens.append("<str>")
                i = j
            elif c == "`":
                j, text, parts = read_template(i)
                out.append((text, src.count("\n", 0, i) + 1, tuple(tokens[-4:])))
                for a, b in parts:
                    scan(a, b, [*tokens, "${"])
                tokens.append("<str>")
                i = j
            elif c == "/" and (not tokens or tokens[-1] in _BEFORE_REGEX
                               or not (_IDENT.fullmatch(tokens[-1]) or _NUMBER.fullmatch(tokens[-1])
                                       or tokens[-1] in (")", "]", "}", "<str>"))):
                j, in_class = i + 1, False  # a regular expression literal
                while j < n and (src[j] != "/" or in_class):
                    if src[j] == "\\":
                        j += 1
                    elif src[j] in "[]":
                        in_class = src[j] == "["
                    j += 1
                j += 1
                while j < n and src[j].isalpha():
                    j += 1
                tokens.append("<regex>")
                i = j
            else:
                m = _IDENT.match(src, i) or _NUMBER.match(src, i)
                token = m.group() if m else next((p for p in _PUNCT if src.startswith(p, i)), c)
                tokens.append(token)
                i += len(token)

    scan(0, n, [])
    return out


# what comes right before a literal that is code, not words: a class name, a selector, a module,
# a catalog key, a rel value, a message for developers
_NOT_WORDS_AFTER = [("class", ":"), ("className", "="), ("querySelector", "("), ("querySelectorAll", "("),
                    ("closest", "("), ("matchMedia", "("), ("from",), ("import",), ("t", "("), ("tn", "("),
                    ("tx", "("), ("rel", ":"), ("warn", "("), ("error", "("), ("Error", "(")]


def reads_like_words(text: str) -> bool:
    s = re.sub(r"\S*/\S*", "", text).replace("{}", "\x00")  # paths, URLs and MIME types are not words
    bare = s.replace("\x00", "")
    if not re.search(r"[A-Za-z]{2,}", bare):
        return False
    return bool(
        re.search(r"(?<![\w-])[A-Z][a-z]+(?![\w-])", bare)  # a capitalised word: "Copy", "Go live"
        or (" " in bare and re.search(r"[A-Za-z]{2,}[.!?…]\s*$", bare))  # a sentence
        or re.search(r"^\s+\S|\S\s+$", s)  # a fragment glued to others: " (disabled)", "Member since "
        or re.search(r"\x00 [a-z]{2,}|[a-z]{2,} \x00", s)  # "{n} seconds", "key {}"
        or re.search(r"(?<![\w-])[a-z]{2,} [a-z]{2,}(?![\w-])", bare))  # two words: "in chat"


def english_literals(src: str) -> list[tuple[int, str]]:
    found = []
    for text, line, before in string_literals(src):
        if any(before[-len(ctx):] == ctx for ctx in _NOT_WORDS_AFTER) or text in ALLOWED:
            continue
        if reads_like_words(text):
            found.append((line, text))
    return found


def test_no_english_left_in_the_code():
    left = [f"{path.relative_to(WEB)}:{line}: {text!r}" for path in CODE for line, text in english_literals(path.read_text())]
    assert left == [], "\n".join(["words for people go through the catalog (web/README.md):", *left])


def test_the_scan_finds_a_hard_coded_label_and_lets_code_pass():
    flagged = english_literals("""
        const a = h("button", { class: "btn btn-primary", type: "submit" }, "Subscribe");
        b.setAttribute("aria-label", `Subscribe to ${name}`);
        status.set(`${n} subscribers`);
        const c = h("span", {}, " (paused)");
        input.placeholder = "say something nice.";
    """)
    assert [text for _, text in flagged] == ["Subscribe", "Subscribe to {}", "{} subscribers", " (paused)",
                                             "say something nice."]
    assert english_literals("""
        import { t } from "./i18n.js"; // Comments Are Fine.
        const a = h("button", { class: "btn btn-primary chat-action", type: "submit" }, t("sub.button"));
        const u = `/api/channels/${id}/subscribe?tier=${tier}`, r = /^Value error,\\s*/i, k = e.key === "Escape";
        el.querySelector('[aria-invalid="true"]'); h.set("Accept", "application/json, application/problem+json");
        const x = a / b, y = "chat:message", z = "stream-title", w = `${hh}:${mm}`;
    """) == []


class _Shell(HTMLParser):
    """index.html's visible text and aria-labels outside <noscript>, <script>, <style> and <title>."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.untranslated: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("aria-label") and "data-i18n-label" not in attrs and attrs["aria-label"] not in ALLOWED:
            self.untranslated.append(f"<{tag} aria-label={attrs['aria-label']!r}>")
        if tag not in ("meta", "link", "br", "img", "input"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        text = data.strip()
        if not text or any(tag in ("noscript", "script", "style", "title", "head") for tag, _ in self.stack):
            return
        if not any("data-i18n" in attrs for _, attrs in self.stack[-1:]) and text not in ALLOWED:
            self.untranslated.append(text)


def test_index_html_text_comes_from_the_catalog():
    shell = _Shell()
    shell.feed((WEB / "index.html").read_text())
    assert shell.untranslated == []


# ---- choosing the language, formatting ---------------------------------------------------------

@needs_node
def test_language_tags_pick_a_catalog_and_fill_placeholders():
    result = node(f"""
globalThis.document = {{ documentElement: {{ lang: "" }} }};
globalThis.navigator = {{ languages: ["fr-FR", "de-CH"], language: "fr-FR" }};
const i18n = await import("{(WEB / 'i18n.js').as_uri()}");
const picks = ["de", "de-AT", "DE-de", "en-GB", "fr", "", null, "pt-BR"].map((tag) => i18n.pick(tag));
const browser = i18n.pick(i18n.preferred(null));
const chosen = i18n.pick(i18n.preferred({{ profile: {{ language: "en" }} }}));
const none = i18n.pick(i18n.preferred({{ profile: {{}} }}));  // signed in without a setting: the browser's
i18n.setLanguage("de-AT");
const lang = document.documentElement.lang;
const text = i18n.t("nav.accountMenu", {{ name: "Ada" }});
const one = i18n.tn("user.followers", 1), many = i18n.tn("home.viewers", 5, {{ n: "5" }});
const parts = i18n.tx("dash.noChannel", {{ link: {{ node: "a" }} }});
console.log(JSON.stringify({{ picks, browser, chosen, none, lang, text, one, many, parts }}));""")
    assert result["picks"] == ["de", "de", "de", "en", "en", "en", "en", "en"]
    assert result["browser"] == "de"  # signed out: the browser's first language with a catalog
    assert result["chosen"] == "en"  # signed in: the profile's language wins over the browser's
    assert result["none"] == "de"
    assert result["lang"] == "de"
    assert result["text"] == "Kontomenü für Ada"
    assert (result["one"], result["many"]) == ("Follower", "5 Zuschauer")
    assert result["parts"] == ["Sie haben noch keinen Kanal. ", {"node": "a"}, "."]  # a link inside a sentence


@needs_node
def test_plurals_numbers_dates_and_relative_times_follow_the_language():
    result = node(f"""
globalThis.document = {{ documentElement: {{ lang: "" }} }};
globalThis.navigator = {{ languages: ["en"], language: "en" }};
const i18n = await import("{(WEB / 'i18n.js').as_uri()}");
const now = Date.parse("2025-03-09T12:00:00Z");
const out = {{}};
for (const lang of ["en", "de"]) {{
  i18n.setLanguage(lang);
  out[lang] = {{
    followers: [0, 1, 2].map((n) => i18n.tn("home.followers", n, {{ n: i18n.formatNumber(n) }})),
    views: i18n.tn("dash.totalViews", 1234, {{ n: i18n.formatNumber(1234) }}),
    compact: [950, 1234, 1500000].map(i18n.formatCompact),
    units: [i18n.formatUnit(1, "minute"), i18n.formatUnit(30, "second"), i18n.formatUnit(1, "week")],
    date: i18n.formatDateTime("2025-03-09T12:00:00Z", {{ year: "numeric", month: "long", day: "numeric", timeZone: "UTC" }}),
    ago: [i18n.relativeTime(now - 5 * 60_000, now), i18n.relativeTime(now - 86_400_000, now), i18n.relativeTime(now + 7_200_000, now),
          i18n.relativeTime(now - 3000, now)],
    label: i18n.midSentence("Stream key"),
    name: i18n.languageName(lang),
  }};
}}
console.log(JSON.stringify(out));""")
    assert result["en"] == {
        "followers": ["0 followers", "1 follower", "2 followers"], "views": "1,234 total views",
        "compact": ["950", "1.2K", "1.5M"], "units": ["1 minute", "30 seconds", "1 week"], "date": "March 9, 2025",
        "ago": ["5 minutes ago", "yesterday", "in 2 hours", "now"], "label": "stream key", "name": "English"}
    assert result["de"] == {
        "followers": ["0 Follower", "1 Follower", "2 Follower"], "views": "1.234 Aufrufe insgesamt",
        "compact": ["950", "1234", "1,5\u00a0Mio."], "units": ["1 Minute", "30 Sekunden", "1 Woche"],
        "date": "9. März 2025", "ago": ["vor 5 Minuten", "gestern", "in 2 Stunden", "jetzt"],
        "label": "Stream key", "name": "Deutsch"}
