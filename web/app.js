// Client-side router and the header's account area.
// The gateway answers every unknown path with index.html, so routing is on location.pathname.

// first: its listeners report errors of everything evaluated after it (web/errors.js)
import "./errors.js";
import * as auth from "./auth.js";
import { preferred, setLanguage, t } from "./i18n.js";
import { announce, avatar, h } from "./ui.js";
import home from "./pages/home.js";
import register from "./pages/register.js";
import login from "./pages/login.js";
import onboarding from "./pages/onboarding.js";
import dashboard, { newChannel } from "./pages/dashboard.js";
import profile from "./pages/profile.js";
import channelEditor from "./pages/channel-editor.js";
import moderation from "./pages/moderation.js";
import stream from "./pages/stream.js";
import clip from "./pages/clip.js";
import notFound from "./pages/not-found.js";
import userProfile from "./pages/user.js";

const SITE = "Streamplatform";

/** access: "any" | "user" (logged in, else to login with ?next=) | "guest" (logged out, else to dashboard);
 * title: a message catalog key */
const ROUTES = [
  { pattern: /^\/$/, page: home, title: "title.home", access: "any" },
  { pattern: /^\/auth\/register$/, page: register, title: "title.register", access: "guest" },
  { pattern: /^\/auth\/login$/, page: login, title: "title.login", access: "guest" },
  { pattern: /^\/onboarding$/, page: onboarding, title: "title.onboarding", access: "user" },
  { pattern: /^\/dashboard$/, page: dashboard, title: "title.dashboard", access: "user" },
  { pattern: /^\/dashboard\/new-channel$/, page: newChannel, title: "title.newChannel", access: "user" },
  { pattern: /^\/dashboard\/profile$/, page: profile, title: "title.profile", access: "user" },
  { pattern: /^\/dashboard\/channel$/, page: channelEditor, title: "title.channel", access: "user" },
  { pattern: /^\/dashboard\/moderation$/, page: moderation, title: "title.moderation", access: "user" },
  { pattern: /^\/streams\/([^/]+)$/, page: stream, title: "title.stream", access: "any", params: ["slug"] },
  { pattern: /^\/users\/([^/]+)$/, page: userProfile, title: "title.user", access: "any", params: ["username"] },
  { pattern: /^\/clips\/([^/]+)$/, page: clip, title: "title.clip", access: "any", params: ["id"] },
];

/** A same-origin path from ?next=, or null (never an open redirect). */
export function safeNext(value) {
  if (!value || typeof value !== "string" || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) {
    return null;
  }
  try {
    const url = new URL(value, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

export function navigate(to, { replace = false } = {}) {
  const url = new URL(to, location.origin);
  if (url.origin !== location.origin) {
    location.assign(url.href);
    return;
  }
  const target = url.pathname + url.search + url.hash;
  if (replace) history.replaceState(null, "", target);
  else if (target !== location.pathname + location.search + location.hash) history.pushState(null, "", target);
  render({ focus: true });
}

function match(pathname) {
  for (const route of ROUTES) {
    const m = route.pattern.exec(pathname);
    if (m) {
      const params = {};
      (route.params || []).forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]);
        } catch {
          params[name] = m[i + 1];
        }
      });
      return { route, params };
    }
  }
  return { route: { page: notFound, title: "title.notFound", access: "any" }, params: {} };
}

const main = document.getElementById("main");
let renderSeq = 0;
let cleanup = null;
let currentRoute = null;

async function render({ focus = false } = {}) {
  const seq = ++renderSeq;
  let path = location.pathname;
  if (path.length > 1 && path.endsWith("/")) {
    path = path.replace(/\/+$/, "");
    history.replaceState(null, "", path + location.search + location.hash);
  }
  const { route, params } = match(path);
  const query = new URLSearchParams(location.search);

  if (route.access === "user" && !auth.isLoggedIn()) {
    navigate(`/auth/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
    return;
  }
  if (route.access === "guest" && auth.isLoggedIn()) {
    navigate(safeNext(query.get("next")) || "/dashboard", { replace: true });
    return;
  }

  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  currentRoute = route;
  document.title = `${t(route.title)} · ${SITE}`;

  const view = h("div", { class: "view" });
  const ctx = {
    params, query, navigate, safeNext,
    /** true while this render is still the current one (for late async results) */
    isCurrent: () => seq === renderSeq,
    setTitle(title) {
      if (seq === renderSeq) document.title = `${title} · ${SITE}`;
    },
  };
  try {
    const result = await route.page(view, ctx);
    if (seq !== renderSeq) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
  } catch (err) {
    if (seq !== renderSeq) return;
    if (err && err.status === 401) return; // the session ended; the auth listener redirects
    console.error(err);
    view.replaceChildren(
      h("section", { class: "container narrow page" },
        h("h1", { tabindex: "-1" }, t("error.title")),
        h("p", { class: "muted" }, (err && err.detail) || t("error.text")),
        h("p", {}, h("a", { href: location.pathname + location.search }, t("error.retry")))));
  }
  main.replaceChildren(view);
  markCurrentLinks();
  if (focus) {
    window.scrollTo(0, 0);
    const heading = view.querySelector("h1");
    if (heading) {
      if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    } else {
      main.focus({ preventScroll: true });
    }
    announce(document.title);
  }
}

// ---- header: log in / sign up, or the account menu --------------------------------------------

const account = document.getElementById("account");
let closeMenu = () => {};

function renderAccount() {
  closeMenu();
  const user = auth.currentUser();
  if (!auth.isLoggedIn()) {
    account.replaceChildren(
      h("a", { class: "btn btn-ghost", href: "/auth/login" }, t("nav.login")),
      h("a", { class: "btn btn-primary", href: "/auth/register" }, t("nav.signup")));
    return;
  }
  const name = (user && (user.displayName || user.username)) || t("nav.account");
  const menuId = "account-menu";
  const button = h("button", {
    type: "button", class: "account-button", "aria-expanded": "false", "aria-controls": menuId,
    "aria-label": t("nav.accountMenu", { name }),
  }, avatar(user, 32), h("span", { class: "account-name" }, name), h("span", { class: "caret", "aria-hidden": "true" }));
  const logoutButton = h("button", { type: "button", class: "menu-item" }, t("nav.logout"));
  const menu = h("div", { class: "account-menu", id: menuId, hidden: true },
    h("p", { class: "menu-user" }, h("strong", {}, name), user ? h("span", { class: "muted" }, `@${user.username}`) : null),
    h("ul", { role: "list" },
      h("li", {}, h("a", { class: "menu-item", href: "/dashboard" }, t("nav.dashboard"))),
      h("li", {}, h("a", { class: "menu-item", href: "/dashboard/profile" }, t("nav.editProfile"))),
      user ? h("li", {}, h("a", { class: "menu-item", href: `/users/${encodeURIComponent(user.username)}` }, t("nav.publicProfile"))) : null,
      h("li", {}, logoutButton)));

  const items = () => [...menu.querySelectorAll(".menu-item")];
  const open = (focusFirst) => {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    if (focusFirst) items()[0].focus();
  };
  closeMenu = (returnFocus = false) => {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (returnFocus) button.focus();
  };
  button.addEventListener("click", () => (menu.hidden ? open(false) : closeMenu()));
  button.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      open(true);
    }
  });
  menu.addEventListener("keydown", (e) => {
    const list = items();
    const i = list.indexOf(document.activeElement);
    if (e.key === "Escape") {
      e.preventDefault();
      closeMenu(true);
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = (i + (e.key === "ArrowDown" ? 1 : -1) + list.length) % list.length;
      list[next].focus();
    }
  });
  menu.addEventListener("click", (e) => {
    if (e.target.closest("a")) closeMenu();
  });
  logoutButton.addEventListener("click", async () => {
    closeMenu();
    await auth.logout();
  });
  account.replaceChildren(h("div", { class: "account-wrap" }, button, menu));
}

document.addEventListener("click", (e) => {
  if (!e.target.closest(".account-wrap")) closeMenu();
});
document.addEventListener("focusin", (e) => {
  if (!e.target.closest(".account-wrap")) closeMenu();
});

function markCurrentLinks() {
  for (const a of document.querySelectorAll("a[href]")) {
    // by path: the dashboard's links carry ?channel=, which names the channel, not another page
    const href = a.getAttribute("href");
    const url = href.startsWith("/") && !href.startsWith("//") ? new URL(href, location.origin) : null;
    if (url && url.pathname === location.pathname && (url.search === "" || url.search === location.search)) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
}

// ---- language: the user's setting, else the browser's ---------------------------------------------

/** The page's fixed text (index.html) from the catalog: elements carry data-i18n (text) or data-i18n-label. */
function translateShell() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
}

setLanguage(preferred(auth.isLoggedIn() ? auth.currentUser() : null));
translateShell();

auth.onChange((user, reason) => {
  // a saved profile, a login or a logout may change the language: the page is drawn again in it
  // (not after a login: the login and sign-up pages go on to the next page themselves)
  const changed = setLanguage(preferred(auth.isLoggedIn() ? user : null));
  if (changed) translateShell();
  renderAccount();
  if (changed && reason !== "logout" && reason !== "login" && !(reason === "expired" && currentRoute && currentRoute.access === "user")) {
    render();
  }
  if (reason === "logout") {
    navigate("/", { replace: false });
    announce(t("nav.loggedOut"));
  } else if (reason === "expired" && currentRoute && currentRoute.access === "user") {
    navigate(`/auth/login?next=${encodeURIComponent(location.pathname + location.search)}&expired=1`, { replace: true });
  }
});

// ---- links: same-origin clicks stay in the app --------------------------------------------------

document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || a.dataset.external !== undefined) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/media/")) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return; // in-page anchor
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener("popstate", () => render({ focus: true }));

// ---- start ---------------------------------------------------------------------------------------

renderAccount();
render();
if (auth.isLoggedIn()) {
  // refresh the cached user (name, avatar, theme) in the background; a dead session logs out
  auth.loadUser().catch(() => {});
}
