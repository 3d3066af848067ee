"""The creator's and the viewer's pages in the language of the profile (Debian's Chromium through
the gateway): with `language` "de" the dashboard, the channel editor, the moderation panel and the
stream page with its chat show German (a few exact strings per page, none of a list of English
labels in the text, the aria-labels, the placeholders, the titles and the options), with "en"
English; <html lang> follows. A sign-up from a German browser keeps German. Screenshots of the
German dashboard and stream page (tests/e2e/artifacts/i18n-*-de.png) show the longer words fit."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from ..helpers import report_a_message
from .common import needs_chat, own_channel
from .conftest import PASSWORD

pytestmark = [pytest.mark.e2e]

# every word a person reads or hears on the page: text, aria-labels, placeholders, titles, alt texts
WORDS_ON_PAGE = """() => {
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], [alt]')) {
    for (const name of ['aria-label', 'placeholder', 'title', 'alt']) parts.push(el.getAttribute(name) || '');
  }
  for (const option of document.querySelectorAll('option')) parts.push(option.textContent);
  return parts.join('\\n');
}"""

# per language: what each page must show, and the other language's labels that must not be there
PAGES = {
    "de": {
        "dashboard": {"heading": "Creator-Dashboard", "buttons": ["Live gehen", "Streamschlüssel kopieren", "Streamschlüssel zeigen",
                                                                   "Schlüssel erneuern", "Ziel hinzufügen"],
                      "texts": ["Encoder-Einstellungen", "Vergangene Übertragungen", "Videoanbieter", "Ihr Kanal",
                                "0 Follower · 0 Aufrufe insgesamt"]},
        "channel": {"heading": "Kanal", "buttons": ["Kanal speichern", "Mein Profilbild verwenden"],
                    "labels": ["Kanalname", "Adresse", "Kategorie", "Beschreibung"], "saved": "Ihr Kanal ist gespeichert."},
        "moderation": {"heading": "Moderation", "buttons": ["Chat-Einstellungen speichern", "Als Moderator hinzufügen",
                                                            "Anwenden", "Aktualisieren", "Erledigen"],
                       "labels": ["Gesperrte Wörter", "Langsamer Modus", "Dauer"], "slow": ["Aus", "30 Sekunden", "1 Minute"],
                       "texts": ["Gemeldete Nachricht", "Noch keine Moderatoren.", "Niemand ist gesperrt."]},
        "stream": {"texts": ["ist offline", "Vergangene Übertragungen", "Noch keine Beschreibung.", "1 im Chat"],
                   "buttons": ["Teilen", "Senden"], "composer": "Chatnachricht", "placeholder": "Nachricht schreiben",
                   "delete": "Nachricht von {username} löschen"},
        "absent": ["Go live", "Copy", "Show stream key", "Rotate key", "Encoder settings", "Past broadcasts",
                   "Video provider", "Your channel", "Add destination", "total views", "Channel name", "Save channel",
                   "Use my profile picture", "Banned words", "Slow mode", "30 seconds", "Save chat settings",
                   "Add moderator", "Bans and timeouts", "Refresh", "Reported message", "is offline", "Share",
                   "Send a message", "Chat message", "in chat", "No description yet", "Delete message", "Loading",
                   "Log out", "Overview", "Quality", "Full screen"],
    },
    "en": {
        "dashboard": {"heading": "Creator dashboard", "buttons": ["Go live", "Copy stream key", "Show stream key", "Rotate key",
                                                                   "Add destination"],
                      "texts": ["Encoder settings", "Past broadcasts", "Video provider", "Your channel",
                                "0 followers · 0 total views"]},
        "channel": {"heading": "Channel", "buttons": ["Save channel", "Use my profile picture"],
                    "labels": ["Channel name", "Address", "Category", "Description"], "saved": "Your channel is saved."},
        "moderation": {"heading": "Moderation", "buttons": ["Save chat settings", "Add moderator", "Apply", "Refresh",
                                                            "Resolve"],
                       "labels": ["Banned words", "Slow mode", "Length"], "slow": ["Off", "30 seconds", "1 minute"],
                       "texts": ["Reported message", "No moderators yet.", "Nobody is banned or timed out."]},
        "stream": {"texts": ["is offline", "Past broadcasts", "No description yet.", "1 in chat"],
                   "buttons": ["Share", "Send"], "composer": "Chat message", "placeholder": "Send a message",
                   "delete": "Delete message from {username}"},
        "absent": ["Live gehen", "Kopieren", "Streamschlüssel", "Encoder-Einstellungen", "Vergangene Übertragungen",
                   "Videoanbieter", "Ihr Kanal", "Kanalname", "Kanal speichern", "Gesperrte Wörter", "Langsamer Modus",
                   "Sekunden", "Aktualisieren", "Gemeldete Nachricht", "ist offline", "Teilen", "Senden",
                   "Nachricht schreiben", "im Chat", "Noch keine", "Abmelden", "Übersicht", "Qualität", "Vollbild"],
    },
}


# words that do not fit: the page wider than the window, or a control, heading or label whose text
# runs out of its box or off the screen
OVERFLOW = """() => {
  const out = [];
  if (document.documentElement.scrollWidth > innerWidth + 1) out.push(`page ${document.documentElement.scrollWidth}px wide`);
  for (const el of document.querySelectorAll('button, a.btn, label, h1, h2, select, .status-badge, .file-button, .chat-head *')) {
    if (!el.offsetParent || el.closest('.visually-hidden, [data-open="false"]')) continue;  // not shown
    const r = el.getBoundingClientRect();
    if (el.scrollWidth > el.clientWidth + 1 || r.right > innerWidth + 1 || r.left < -1) out.push(el.outerHTML.slice(0, 120));
  }
  return out;
}"""


def _fits(page, widths=(1280, 360)) -> None:
    for width in widths:
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(100)
        assert page.evaluate(OVERFLOW) == [], f"{page.url} at {width}px"
    page.set_viewport_size({"width": 1280, "height": 800})


def _none_of(page, words: list[str]) -> None:
    text = page.evaluate(WORDS_ON_PAGE)
    found = [w for w in words if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]
    assert found == [], f"{page.url}: {found}"


def _label(text):
    """A field's label: the words, and " (optional)" after them on optional fields."""
    return re.compile(rf"^{re.escape(text)}( \(optional\))?$")


def _buttons(scope, names):
    for name in names:
        expect(scope.get_by_role("button", name=name, exact=True).first).to_be_visible()


@needs_chat
@pytest.mark.parametrize("lang", ["de", "en"])
def test_pages_in_the_profile_language(lang, new_page, make_user, gateway, shot):
    want = PAGES[lang]
    user = make_user()
    r = gateway.put("/api/auth/profile", headers=user["auth"], json={"language": lang})
    assert r.status_code == 200 and r.json()["profile"]["language"] == lang, r.text
    channel = own_channel(gateway, user, f"Kanal {user['username']}")
    report_a_message(gateway, channel, make_user())

    # the browser's language is English (Chromium's default here): for "de", the profile's setting wins
    page = new_page()
    page.goto("/auth/login")
    page.locator('form [name="login"]').fill(user["username"])
    page.locator('form [name="password"]').fill(PASSWORD)
    page.locator('form button[type="submit"]').click()

    # dashboard
    dash = want["dashboard"]
    expect(page.get_by_role("heading", name=dash["heading"], exact=True)).to_be_visible(timeout=15_000)
    assert page.evaluate("document.documentElement.lang") == lang
    _buttons(page, dash["buttons"])
    for text in dash["texts"]:
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    expect(page.locator(".encoder-body input.mono").first).not_to_have_value("")  # the keys have loaded
    _none_of(page, want["absent"])
    shot(page, f"i18n-dashboard-{lang}")
    _fits(page)

    # channel editor (through the dashboard's own navigation: no reload)
    nav = page.locator("nav.dash-nav")
    nav.locator("a").nth(1).click()
    editor = want["channel"]
    expect(page.get_by_role("heading", name=editor["heading"], exact=True)).to_be_visible()
    for label in editor["labels"]:
        expect(page.get_by_label(_label(label))).to_be_visible()
    _buttons(page, editor["buttons"])
    page.get_by_role("button", name=editor["buttons"][0]).click()
    expect(page.get_by_text(editor["saved"])).to_be_visible()
    _none_of(page, want["absent"])
    shot(page, f"i18n-channel-{lang}")
    _fits(page)

    # moderation
    nav.locator("a").nth(2).click()
    mod = want["moderation"]
    expect(page.get_by_role("heading", name=mod["heading"], exact=True)).to_be_visible()
    for label in mod["labels"]:
        expect(page.get_by_label(_label(label))).to_be_visible()
    options = page.get_by_label(_label(mod["labels"][1])).locator("option").all_text_contents()
    assert all(o in options for o in mod["slow"]), options
    _buttons(page, mod["buttons"])
    for text in mod["texts"]:
        expect(page.get_by_text(text).first).to_be_visible()
    _none_of(page, want["absent"])
    shot(page, f"i18n-moderation-{lang}")
    _fits(page)

    # the stream page with chat: the owner writes a message
    page.goto(f"/streams/{channel['slug']}")
    watch = want["stream"]
    composer = page.get_by_role("textbox", name=watch["composer"], exact=True)
    expect(composer).to_have_attribute("placeholder", watch["placeholder"])
    send = page.get_by_role("button", name=watch["buttons"][1], exact=True)
    expect(send).to_be_enabled(timeout=15_000)
    composer.fill("hallo / hello")
    send.click()
    line = page.locator(".chat-message", has_text="hallo / hello")
    expect(line).to_be_visible(timeout=10_000)
    expect(line.get_by_role("button", name=watch["delete"].format(username=user["username"]))).to_be_attached()
    for text in watch["texts"]:
        expect(page.get_by_text(text).first).to_be_visible(timeout=10_000)
    _buttons(page, watch["buttons"])
    _none_of(page, want["absent"])
    shot(page, f"i18n-stream-{lang}")
    _fits(page)
    page.set_viewport_size({"width": 360, "height": 740})
    shot(page, f"i18n-stream-{lang}-360", full_page=False)
    page.goto("/dashboard")
    expect(page.get_by_role("heading", name=dash["heading"], exact=True)).to_be_visible()
    shot(page, f"i18n-dashboard-{lang}-360")


def test_a_sign_up_from_a_german_browser_stays_german(browser, base_url, gateway, shot):
    name = f"de_{uuid.uuid4().hex[:8]}"
    ctx = browser.new_context(base_url=base_url, locale="de-DE")
    try:
        page = ctx.new_page()
        page.goto("/auth/register")
        expect(page.get_by_role("heading", name="Konto erstellen")).to_be_visible()
        page.get_by_label("E-Mail-Adresse").fill(f"{name}@example.com")
        page.get_by_label("Benutzername").fill(name)
        page.get_by_label("Passwort", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Konto erstellen").click()
        expect(page.get_by_role("heading", name="Profil einrichten")).to_be_visible()
        assert page.evaluate("document.documentElement.lang") == "de"
        page.get_by_role("link", name="Vorerst überspringen").click()
        expect(page.get_by_role("heading", name="Creator-Dashboard")).to_be_visible()
        shot(page, "i18n-first-dashboard-de")
    finally:
        ctx.close()
    r = gateway.post("/api/auth/login", json={"login": name, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["profile"]["language"] == "de", r.text
