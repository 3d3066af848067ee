"""The web client in a real browser (Debian's Chromium) through the gateway: register, onboard with
an avatar, dashboard, log out and in, error messages, mobile width, keyboard focus, token refresh."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD

pytestmark = pytest.mark.e2e


def _field(page, name):
    return page.locator(f'form [name="{name}"]')


def _error_of(page, name):
    """The error text linked to a field through aria-describedby."""
    ids = _field(page, name).get_attribute("aria-describedby").split()
    error_id = next(i for i in ids if i.endswith("-error"))
    return page.locator(f"#{error_id}")


def _status(page):
    return page.locator("form .form-status[aria-live]")


def _log_in(page, login, password=PASSWORD):
    _field(page, "login").fill(login)
    _field(page, "password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_register_onboard_dashboard_logout_and_login_again(page, png_file, shot):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    account = page.get_by_role("navigation", name="Account")
    expect(account.get_by_role("link", name="Log in")).to_be_visible()
    expect(account.get_by_role("link", name="Sign up")).to_be_visible()
    expect(page.get_by_role("heading", name="Live channels")).to_be_visible()
    shot(page, "home")

    account.get_by_role("link", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    shot(page, "register")

    name = f"web_{uuid.uuid4().hex[:8]}"
    page.get_by_label("Email").fill(f"{name}@example.com")
    page.get_by_label("Username").fill(f"Web_{name[4:]}")  # upper case: refused, never lower-cased silently
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    username = _field(page, "username")
    expect(username).to_have_attribute("aria-invalid", "true")
    expect(_error_of(page, "username")).to_contain_text("lower-case")
    expect(_status(page)).to_have_text("Please fix the highlighted fields.")
    expect(username).to_be_focused()
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    shot(page, "register-error")

    username.fill(name)
    expect(username).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Create account").click()

    # onboarding: display name, bio, avatar with preview
    expect(page).to_have_url(re.compile(r"/onboarding$"))
    expect(page.get_by_role("heading", name="Set up your profile")).to_be_visible()
    expect(page.get_by_role("button", name=f"Account menu for {name}")).to_be_visible()
    display = f"Web Tester {name[-4:]}"
    page.get_by_label("Display name").fill(display)
    page.get_by_label("Bio").fill("I stream speedruns and synth jams.")
    page.get_by_label("Profile picture").set_input_files(str(png_file))
    preview = page.locator(".avatar-preview img")
    expect(preview).to_have_attribute("src", re.compile(r"^/media/avatars/.+\.webp$"))
    expect(page.get_by_text("Profile picture updated.")).to_be_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "onboarding")

    page.get_by_role("button", name="Finish setup").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()
    summary = page.locator(".profile-summary")
    expect(summary.get_by_role("heading", name=display)).to_be_visible()
    expect(summary.get_by_text(f"@{name}")).to_be_visible()
    expect(summary.get_by_text("I stream speedruns and synth jams.")).to_be_visible()
    expect(summary.locator("img.avatar")).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    # no channel yet: the dashboard offers to create one (the streaming flow is in test_streaming.py)
    expect(page.get_by_role("heading", name="Create your channel")).to_be_visible()
    expect(page.get_by_label("Address")).to_have_value(name.replace("_", "-"))
    expect(page.get_by_text("Your profile is not finished yet")).to_have_count(0)
    menu_button = page.get_by_role("button", name=f"Account menu for {display}")
    expect(menu_button.locator("img.avatar")).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    shot(page, "dashboard")

    # log out from the header menu
    menu_button.click()
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    shot(page, "account-menu", full_page=False)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('sp.session')") is None

    # and in again, by username
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    shot(page, "login")
    _log_in(page, name)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator(".profile-summary").get_by_role("heading", name=display)).to_be_visible()


def test_wrong_password_shows_the_generic_error(page, make_user, shot):
    user = make_user()
    page.goto("/auth/login")
    _log_in(page, user["username"], "not-the-password")
    expect(_status(page)).to_have_text("The login or password is wrong.")
    expect(_status(page)).to_have_attribute("data-kind", "error")
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    expect(_field(page, "password")).to_be_focused()
    shot(page, "login-error")
    # by email, right password: in
    _field(page, "password").fill(PASSWORD)
    _field(page, "login").fill(user["email"].upper())
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_dashboard_needs_a_session_and_comes_back_after_login(page, make_user):
    user = make_user()
    page.goto("/dashboard/profile")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Fdashboard%2Fprofile$"))
    expect(page.get_by_text("Log in to continue.")).to_be_visible()
    _log_in(page, user["email"])
    expect(page).to_have_url(re.compile(r"/dashboard/profile$"))
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()
    # an off-site ?next= is ignored
    page.get_by_role("button", name=re.compile("^Account menu for")).click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/auth/login?next=//evil.example/x")
    _log_in(page, user["username"])
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_mobile_width_has_no_horizontal_scroll(new_page, make_user, shot):
    page = new_page(360, 740)
    for path, name in (("/auth/login", "mobile-login"), ("/auth/register", "mobile-register"), ("/", "mobile-home")):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
        shot(page, name)
    user = make_user()
    page.goto("/auth/login")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "mobile-dashboard")
    page.goto("/dashboard/profile")
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "mobile-profile")


def test_keyboard_reaches_submit_with_a_visible_focus_ring(page, shot):
    page.goto("/auth/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    submit = page.get_by_role("button", name="Log in", exact=True)
    seen = []
    for _ in range(15):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.textContent.trim() || document.activeElement.name"))
        if submit.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail(f"Tab never reached the submit button; focus went through {seen}")
    assert seen[0] == "Skip to content"
    assert "login" in seen and "password" in seen
    ring = submit.evaluate("""el => {
        const s = getComputedStyle(el);
        return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
                visible: el.matches(':focus-visible')};
    }""")
    assert ring["visible"] and ring["style"] != "none" and ring["width"] >= 2, ring
    shot(page, "keyboard-focus", full_page=False)
    # Enter on the focused submit with empty fields: field errors, focus moves to the first one
    page.keyboard.press("Enter")
    expect(_field(page, "login")).to_be_focused()
    expect(_error_of(page, "login")).to_have_text("Enter your email or username.")


def test_server_field_errors_land_on_their_fields(page, make_user, tmp_path, shot):
    taken = make_user()
    # the fetch wrapper turns problem+json into an error with fieldErrors from errors[].field
    page.goto("/auth/register")
    parsed = page.evaluate("""async () => {
        const { api } = await import('/api.js');
        try {
            await api.post('/api/auth/register', {email: 'x@example.com', password: 'short', username: 'Nope'},
                           {auth: false});
        } catch (e) {
            return {name: e.name, status: e.status, fields: e.fieldErrors, detail: e.detail};
        }
    }""")
    assert parsed["name"] == "ApiError" and parsed["status"] == 422
    assert set(parsed["fields"]) == {"username", "password"}

    # 409 from the server, shown on the username field
    page.get_by_label("Email").fill(f"other_{uuid.uuid4().hex[:6]}@example.com")
    page.get_by_label("Username").fill(taken["username"])
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(_error_of(page, "username")).to_have_text(re.compile("taken"))
    expect(_field(page, "username")).to_have_attribute("aria-invalid", "true")
    expect(_error_of(page, "email")).to_have_text("")
    shot(page, "register-conflict")

    # a fresh account goes on to onboarding
    fresh = f"web_{uuid.uuid4().hex[:8]}"
    page.get_by_label("Email").fill(f"{fresh}@example.com")
    page.get_by_label("Username").fill(fresh)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/onboarding$"))

    # a social link with a bad site name is caught before sending; a valid one is saved
    page.get_by_label("Display name").fill("Linked Person")
    page.get_by_label("Link 1 Site").fill("my site!")
    page.get_by_label("Link 1 URL").fill("https://example.com/me")
    page.get_by_role("button", name="Finish setup").click()
    expect(page.get_by_label("Link 1 Site")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Site names use letters")).to_be_visible()
    shot(page, "onboarding-errors")
    page.get_by_label("Link 1 Site").fill("homepage")
    page.get_by_role("button", name="Finish setup").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    link = page.locator(".profile-summary").get_by_role("link", name=re.compile("^homepage"))
    expect(link).to_have_attribute("href", "https://example.com/me")
    expect(link).to_have_attribute("rel", re.compile("noopener"))


def test_profile_editor_saves_preferences_and_links(page, make_user, png_file, shot):
    user = make_user()
    page.goto("/auth/login?next=/dashboard/profile")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()
    expect(page.get_by_label("Display name")).to_have_value(user["displayName"])
    expect(page.get_by_label("Bio")).to_have_value("Hello from the tests.")

    page.get_by_label("Profile picture").set_input_files(str(png_file))
    expect(page.locator(".avatar-preview img")).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    page.get_by_label("Bio").fill("New bio.")
    page.get_by_label("Link 1 Site").fill("twitter")
    page.get_by_label("Link 1 URL").fill("https://twitter.com/someone")
    page.get_by_role("button", name="Add a link").click()
    expect(page.get_by_label("Link 2 Site")).to_be_focused()
    page.get_by_label("Link 2 Site").fill("youtube")
    page.get_by_label("Link 2 URL").fill("youtube.com/someone")  # no scheme: caught before sending
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Link 2 URL")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Link 2 URL").fill("https://youtube.com/@someone")
    page.get_by_label("Theme").select_option("light")
    # German would switch the page (tests/e2e/web/test_profile_pages.py); this test stays in English
    page.get_by_label("Language").select_option("en")
    page.get_by_label("Notification e-mail").fill("not an address")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Notification e-mail")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Notification e-mail").fill("alerts@example.com")
    page.get_by_role("button", name="Save changes").click()
    expect(_status(page)).to_have_text("Your profile is saved.")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    shot(page, "profile-light")

    page.reload()  # what the server kept
    expect(page.get_by_label("Bio")).to_have_value("New bio.")
    expect(page.get_by_label("Link 2 URL")).to_have_value("https://youtube.com/@someone")
    expect(page.get_by_label("Language")).to_have_value("en")
    expect(page.get_by_label("Notification e-mail")).to_have_value("alerts@example.com")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")

    page.get_by_label("Theme").select_option("dark")
    page.get_by_role("button", name="Remove link 2").click()
    page.get_by_role("button", name="Save changes").click()
    expect(_status(page)).to_have_text("Your profile is saved.")
    expect(page.locator("html")).not_to_have_attribute("data-theme", "light")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Overview").click()
    summary = page.locator(".profile-summary")
    expect(summary.get_by_role("link", name=re.compile("^twitter"))).to_be_visible()
    expect(summary.get_by_role("link", name=re.compile("^youtube"))).to_have_count(0)
    shot(page, "profile-saved-dashboard")


def test_an_expired_access_token_is_refreshed_transparently(page, make_user):
    user = make_user()
    page.goto("/auth/login")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()
    before = page.evaluate("JSON.parse(localStorage.getItem('sp.session'))")
    # the server refuses this access token (bad signature): one refresh, then the retried call succeeds
    page.evaluate("""() => {
        const s = JSON.parse(localStorage.getItem('sp.session'));
        s.accessToken = s.accessToken.slice(0, -4) + 'AAAA';
        localStorage.setItem('sp.session', JSON.stringify(s));
    }""")
    with page.expect_response(lambda r: r.url.endswith("/api/auth/refresh")) as refreshed:
        page.goto("/dashboard/profile")
    assert refreshed.value.status == 200
    expect(page.get_by_label("Display name")).to_have_value(user["displayName"])
    after = page.evaluate("JSON.parse(localStorage.getItem('sp.session'))")
    assert after["refreshToken"] != before["refreshToken"]

    # a dead refresh token (rotated elsewhere) ends the session: back to login, with ?next=
    page.evaluate("""(old) => {
        localStorage.setItem('sp.session', JSON.stringify({accessToken: 'x.y.z', refreshToken: old, expiresAt: 0}));
    }""", before["refreshToken"])
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Fdashboard&expired=1$"))
    expect(page.get_by_text("Your session ended.")).to_be_visible()


def _upload_error(page):
    upload = page.get_by_label("Profile picture")
    error_id = next(i for i in upload.get_attribute("aria-describedby").split() if i.endswith("-error"))
    return upload, page.locator(f"#{error_id}")


def test_avatar_upload_errors_are_shown(page, make_user, png_file, tmp_path, shot):
    user = make_user()
    page.goto("/auth/login?next=/dashboard/profile")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Edit profile")).to_be_visible()
    upload, error = _upload_error(page)
    uploads = []
    page.on("request", lambda r: uploads.append(r.url) if r.url.endswith("/api/upload/avatar") else None)

    # 415 from the API: not an image at all
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n" * 20)
    upload.set_input_files(str(fake))
    expect(error).to_contain_text("not a supported image")
    expect(upload).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".avatar-preview img")).to_have_count(0)  # back to the initial, no broken image
    shot(page, "avatar-error-415")

    # 422 from the API: a PNG that is cut short
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_file.read_bytes()[:200])
    upload.set_input_files(str(broken))
    expect(error).to_contain_text("corrupt or truncated")

    # too large: refused before sending (the API would answer 413)
    big = tmp_path / "big.png"
    big.write_bytes(png_file.read_bytes() + b"\0" * (5 * 1024 * 1024))
    sent = len(uploads)
    upload.set_input_files(str(big))
    expect(error).to_contain_text("larger than 5 MiB")
    assert len(uploads) == sent

    # then a good one clears the error
    upload.set_input_files(str(png_file))
    expect(page.locator(".avatar-preview img")).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    expect(error).to_have_text("")
    expect(upload).not_to_have_attribute("aria-invalid", "true")


def test_account_menu_works_from_the_keyboard(page, make_user):
    user = make_user()
    page.goto("/auth/login")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()
    button = page.get_by_role("button", name=f"Account menu for {user['displayName']}")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Dashboard", exact=True)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Edit profile").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    page.keyboard.press("ArrowDown")  # opens and focuses the first item
    page.keyboard.press("ArrowUp")  # wraps to the last: Log out
    expect(page.get_by_role("button", name="Log out")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign up")).to_be_visible()


LAYOUT_SHIFT_PROBE = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
}).observe({type: 'layout-shift', buffered: true});
"""


@pytest.mark.parametrize("width,height", [(1280, 800), (360, 740)])
def test_pages_load_without_layout_shift(new_page, make_user, width, height):
    page = new_page(width, height)
    page.context.add_init_script(LAYOUT_SHIFT_PROBE)
    user = make_user()

    def settle_and_measure(path):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(200)
        return page.evaluate("window.__cls")

    for path in ("/", "/auth/login", "/auth/register"):
        assert settle_and_measure(path) == 0, path
    page.goto("/auth/login")
    _log_in(page, user["username"])
    expect(page.get_by_role("heading", name="Creator dashboard")).to_be_visible()
    for path in ("/", "/dashboard", "/dashboard/profile", "/onboarding"):
        assert settle_and_measure(path) == 0, path
