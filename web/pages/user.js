// /users/<username>: the public profile: picture, name, bio, social links, follower counts and a
// Follow button (GET /api/users/{id}, POST|DELETE /api/users/{id}/follow).

import { api } from "../api.js";
import * as auth from "../auth.js";
import { t, tn, formatNumber } from "../i18n.js";
import { announce, avatar, h, socialLinkList } from "../ui.js";

export default async function userProfile(view, ctx) {
  let user;
  try {
    user = await api.get(`/api/users/${encodeURIComponent(ctx.params.username)}`);
  } catch (err) {
    if (err.status !== 404 && err.status !== 422) throw err;
    if (!ctx.isCurrent()) return;
    ctx.setTitle(t("user.notFound.title"));
    view.append(h("section", { class: "container narrow page" },
      h("h1", {}, t("user.notFound.title")),
      h("p", { class: "muted" }, t("user.notFound.text")),
      h("p", {}, h("a", { class: "btn btn-secondary", href: "/" }, t("notFound.home")))));
    return;
  }
  if (!ctx.isCurrent()) return;
  const name = user.displayName || user.username;
  ctx.setTitle(name);

  const followerCount = h("strong", { "data-testid": "follower-count" });
  const followerWord = h("span", { class: "muted" });
  const followingCount = h("strong", { "data-testid": "following-count" }, formatNumber(user.followingCount));
  const showCounts = () => {
    followerCount.textContent = formatNumber(user.followerCount);
    followerWord.textContent = ` ${tn("user.followers", user.followerCount)}`;
  };
  showCounts();

  const me = auth.currentUser();
  let action = null;
  if (!auth.isLoggedIn()) {
    action = h("a", { class: "btn btn-primary btn-small", href: `/auth/login?next=${encodeURIComponent(location.pathname)}` },
      t("user.follow"));
  } else if (me && me.id === user.id) {
    action = h("a", { class: "btn btn-secondary btn-small", href: "/dashboard/profile" }, t("user.editProfile"));
  } else {
    action = h("button", { type: "button", class: "btn btn-small" });
    const show = () => {
      action.textContent = user.isFollowing ? t("user.following") : t("user.follow");
      action.className = `btn btn-small ${user.isFollowing ? "btn-secondary" : "btn-primary"}`;
      action.setAttribute("aria-pressed", String(Boolean(user.isFollowing)));
    };
    show();
    action.addEventListener("click", async () => {
      const next = !user.isFollowing;
      action.disabled = true;
      try {
        const path = `/api/users/${encodeURIComponent(user.id)}/follow`;
        if (next) await api.post(path);
        else await api.del(path);
        user.isFollowing = next;
        // read the count back rather than guess it: another follower may have come meanwhile
        const fresh = await api.get(`/api/users/${encodeURIComponent(user.id)}`);
        user.followerCount = fresh.followerCount;
        show();
        showCounts();
        announce(next ? t("user.nowFollowing", { name }) : t("user.noLongerFollowing", { name }));
      } catch (err) {
        announce(err.detail || t("user.followFailed"));
      } finally {
        action.disabled = false;
      }
    });
  }

  view.append(
    h("section", { class: "container narrow page" },
      h("div", { class: "card" },
        h("div", { class: "profile-head" },
          avatar(user, 96, ""),
          h("div", { class: "creator-text" },
            h("h1", {}, name),
            h("p", { class: "muted" }, `@${user.username}`)),
          h("div", { class: "creator-actions" }, action)),
        h("p", { class: "follow-counts" },
          h("span", {}, followerCount, followerWord),
          h("span", {}, followingCount, h("span", { class: "muted" }, ` ${t("user.followingCount")}`))),
        user.bio ? h("p", { class: "profile-bio" }, user.bio) : null,
        socialLinkList(user.socialLinks, t("user.links")))));
}
