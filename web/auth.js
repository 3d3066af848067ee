// The session: tokens in localStorage, the current user, and the account calls that change them.
//
// Refresh tokens rotate on every use and a reused one revokes the whole login, so refreshes are
// serialised: one at a time in this tab (a shared promise) and across tabs (Web Locks, when the
// browser has them); a tab that waited re-reads storage and uses the pair another tab obtained.

import { api, configureAuth } from "./api.js";

const SESSION_KEY = "sp.session"; // {accessToken, refreshToken, expiresAt}
const USER_KEY = "sp.user";
const THEME_KEY = "sp.theme";
const EARLY_REFRESH_MS = 30_000;

function read(key) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* private mode or full: the session lasts for this page only */
  }
}

let session = read(SESSION_KEY);
let user = session ? read(USER_KEY) : null;
let userLoad = null; // the pending or finished GET /api/auth/user of this page load
const listeners = new Set();

/** fn(user, reason) with reason one of "login", "user", "logout", "expired" */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(reason) {
  for (const fn of [...listeners]) {
    try {
      fn(user, reason);
    } catch (err) {
      console.error(err);
    }
  }
}

export function isLoggedIn() {
  return Boolean(session && session.refreshToken);
}

/** The last known current user (may be a little stale; see loadUser). */
export function currentUser() {
  return user;
}

export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === "light" || theme === "system") root.dataset.theme = theme;
  else delete root.dataset.theme;
  try {
    if (theme && theme !== "dark") localStorage.setItem(THEME_KEY, theme);
    else localStorage.removeItem(THEME_KEY);
  } catch {
    /* ignore */
  }
}

function setSession(result, reason = "login") {
  session = {
    accessToken: result.accessToken,
    refreshToken: result.refreshToken,
    expiresAt: Date.now() + (Number(result.expiresIn) || 900) * 1000,
  };
  write(SESSION_KEY, session);
  if (result.user) setUser(result.user, reason);
}

export function setUser(next, reason = "user") {
  user = next;
  if (user) userLoad = Promise.resolve(user); // loadUser() answers the newest copy
  write(USER_KEY, user);
  applyTheme(user && user.profile ? user.profile.theme : null);
  emit(reason);
}

function clearSession(reason) {
  session = null;
  user = null;
  userLoad = null;
  write(SESSION_KEY, null);
  write(USER_KEY, null);
  emit(reason);
}

// ---- refresh ---------------------------------------------------------------------------------

let refreshing = null;

function withLock(fn) {
  if (navigator.locks && typeof navigator.locks.request === "function") {
    return navigator.locks.request("sp-auth-refresh", fn);
  }
  return fn();
}

async function doRefresh() {
  const stored = read(SESSION_KEY);
  if (!stored) {
    if (session) clearSession("expired");
    return false;
  }
  if (!session || stored.refreshToken !== session.refreshToken) {
    session = stored; // another tab rotated the pair while we waited
    return true;
  }
  try {
    const result = await api.post("/api/auth/refresh", { refreshToken: session.refreshToken }, { auth: false });
    setSession(result, "user");
    return true;
  } catch (err) {
    if (err && err.status >= 400 && err.status < 500) clearSession("expired");
    return false;
  }
}

/** Get a fresh access token. `staleToken` is the one that was refused (skip if already replaced). */
function refreshTokens(staleToken) {
  if (!session) return Promise.resolve(false);
  if (staleToken && session.accessToken !== staleToken) return Promise.resolve(true);
  if (!refreshing) refreshing = withLock(doRefresh).finally(() => { refreshing = null; });
  return refreshing;
}

/** A current access token (refreshed first when about to expire), or null when logged out. */
export async function accessToken() {
  if (!session) return null;
  if (session.expiresAt && Date.now() > session.expiresAt - EARLY_REFRESH_MS) {
    await refreshTokens(session.accessToken);
  }
  return session ? session.accessToken : null;
}

configureAuth({
  async getAccessToken() {
    if (!session) return null;
    if (session.expiresAt && Date.now() > session.expiresAt - EARLY_REFRESH_MS) {
      await refreshTokens(session.accessToken);
    }
    return session ? session.accessToken : null;
  },
  refresh: refreshTokens,
});

// another tab logged in or out
window.addEventListener("storage", (event) => {
  if (event.key === SESSION_KEY) {
    const stored = read(SESSION_KEY);
    if (!stored && session) clearSession("logout");
    else if (stored) session = stored;
  } else if (event.key === USER_KEY && session) {
    user = read(USER_KEY);
    emit("user");
  }
});

// ---- account calls ---------------------------------------------------------------------------

/** Fetch the current user from the API (once per page load unless `force`). */
export function loadUser({ force = false } = {}) {
  if (!isLoggedIn()) return Promise.resolve(null);
  if (!userLoad || force) {
    userLoad = api.get("/api/auth/user").then(
      (fresh) => {
        setUser(fresh);
        return fresh;
      },
      (err) => {
        userLoad = null;
        throw err;
      },
    );
  }
  return userLoad;
}

/** `language`: the one the page is shown in (the browser's); the new account keeps it rather than
 * the server's default, so signing up does not switch the site to English. */
export async function register({ email, username, password, displayName, language }) {
  const body = { email, username, password };
  if (displayName) body.displayName = displayName;
  const result = await api.post("/api/auth/register", body, { auth: false });
  const profile = result.user && result.user.profile;
  if (language && profile && profile.language !== language) {
    try {
      result.user = await api.put("/api/auth/profile", { language }, {
        auth: false, headers: { Authorization: `Bearer ${result.accessToken}` } });
    } catch {
      /* the account exists; the language can be set in the profile editor */
    }
  }
  setSession(result, "login");
  return result.user;
}

export async function login(loginName, password) {
  const result = await api.post("/api/auth/login", { login: loginName, password }, { auth: false });
  setSession(result, "login");
  return result.user;
}

/** The configured external sign-in providers ([{name, displayName, loginUrl}]); [] when unknown. */
export async function externalProviders() {
  try {
    return (await api.get("/api/auth/providers", { auth: false })).providers || [];
  } catch {
    return [];
  }
}

/** Finish an external sign-in: the one-time code the callback left in the page's fragment. */
export async function completeExternal(code) {
  const result = await api.post("/api/auth/oidc/complete", { code }, { auth: false });
  setSession(result, "login");
  return result.user;
}

/** Link the external account of a pending sign-in to the (just signed-in) current user. */
export async function confirmExternalLink(linkToken) {
  return api.post("/api/auth/oidc/link", { linkToken });
}

export async function logout() {
  const refreshToken = session && session.refreshToken;
  clearSession("logout");
  if (refreshToken) {
    try {
      await api.post("/api/auth/logout", { refreshToken }, { auth: false });
    } catch {
      /* the local session is gone either way */
    }
  }
}

export async function onboard({ displayName, bio, socialLinks }) {
  const fresh = await api.post("/api/auth/onboard", { displayName, bio, socialLinks });
  setUser(fresh);
  return fresh;
}

export async function updateProfile(changes) {
  const fresh = await api.put("/api/auth/profile", changes);
  setUser(fresh);
  return fresh;
}

export async function uploadAvatar(file) {
  const form = new FormData();
  form.append("file", file, file.name || "avatar");
  const { url } = await api.upload("/api/upload/avatar", form);
  if (user) setUser({ ...user, avatar: url });
  return url;
}
