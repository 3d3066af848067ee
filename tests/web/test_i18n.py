"""The web client's message catalog (web/i18n.js, web/i18n/*.js) under Node: German is complete
(the same keys as English, none left empty or untranslated by mistake), every key a translated page
asks for exists, placeholders match between languages, and BCP 47 tags pick their catalog.
The pages themselves switching language are in tests/e2e/web/test_profile_pages.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
# the pages whose every user-visible string goes through the catalog (web/README.md)
TRANSLATED = ["app.js", "ui.js", "pages/home.js", "pages/login.js", "pages/register.js", "pages/onboarding.js",
              "pages/profile.js", "pages/not-found.js", "pages/user.js", "subscribe.js"]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (make setup installs it)")


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


def test_german_has_every_english_key_with_the_same_placeholders():
    cats = catalogs()
    assert cats["en"].keys() == cats["de"].keys()
    for key, text in cats["en"].items():
        assert cats["de"][key].strip(), key
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", cats["de"][key])), key
    # a catalog copied without translating is not complete: most sentences must differ
    sentences = [k for k, v in cats["en"].items() if len(v.split()) >= 3]
    same = [k for k in sentences if cats["en"][k] == cats["de"][k]]
    assert not same, same


def test_every_key_the_pages_use_is_in_the_catalog():
    en = catalogs()["en"]
    used = set()
    for name in TRANSLATED:
        used |= set(re.findall(r"\bt\(\s*\"([^\"]+)\"", (WEB / name).read_text()))
        used |= {k + ".other" for k in re.findall(r"\btn\(\s*\"([^\"]+)\"", (WEB / name).read_text())}
    # pages that use a few keys (links, the dashboard menu, subscriptions in chat and moderation)
    for name in ("pages/stream.js", "pages/dashboard.js", "chat.js", "pages/moderation.js"):
        used |= set(re.findall(r"\bt\(\s*\"([^\"]+)\"", (WEB / name).read_text()))
    # route titles are keys too
    used |= set(re.findall(r"title: \"(title\.[^\"]+)\"", (WEB / "app.js").read_text()))
    # data-i18n / data-i18n-label attributes of index.html
    used |= set(re.findall(r"data-i18n(?:-label)?=\"([^\"]+)\"", (WEB / "index.html").read_text()))
    assert used, "no keys found: the patterns above are wrong"
    assert sorted(used - en.keys()) == []


def test_language_tags_pick_a_catalog_and_fill_placeholders():
    result = node(f"""
globalThis.document = {{ documentElement: {{ lang: "" }} }};
globalThis.navigator = {{ languages: ["fr-FR", "de-CH"], language: "fr-FR" }};
const i18n = await import("{(WEB / 'i18n.js').as_uri()}");
const picks = ["de", "de-AT", "DE-de", "en-GB", "fr", "", null, "pt-BR"].map((tag) => i18n.pick(tag));
const browser = i18n.pick(i18n.preferred(null));
const chosen = i18n.pick(i18n.preferred({{ profile: {{ language: "en" }} }}));
i18n.setLanguage("de-AT");
const lang = document.documentElement.lang;
const text = i18n.t("nav.accountMenu", {{ name: "Ada" }});
const one = i18n.tn("user.followers", 1), many = i18n.tn("home.viewers", 5, {{ n: "5" }});
console.log(JSON.stringify({{ picks, browser, chosen, lang, text, one, many }}));""")
    assert result["picks"] == ["de", "de", "de", "en", "en", "en", "en", "en"]
    assert result["browser"] == "de"  # signed out: the browser's first language with a catalog
    assert result["chosen"] == "en"  # signed in: the profile's language wins over the browser's
    assert result["lang"] == "de"
    assert result["text"] == "Kontomenü für Ada"
    assert (result["one"], result["many"]) == ("Follower", "5 Zuschauer")
