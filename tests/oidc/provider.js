// A real OpenID Connect provider (panva/oidc-provider) for the tests, on loopback.
//
// Environment: OIDC_PORT, OIDC_ISSUER, OIDC_CLIENTS (JSON client metadata), OIDC_JWKS (JSON, the
// private signing keys: the tests sign their own bad tokens with the key the provider publishes),
// OIDC_PARENT_PID (the provider exits when that process is gone, so it never outlives the tests).
//
// The interaction signs in at once as the account named by `login_hint` (default "alice") and
// grants what the client asked for: the tests drive the whole flow with a plain HTTP client.
// Accounts: any id; e-mail `<id>@example.com`, verified unless the id starts with "unverified".
import http from "node:http";
import Provider from "oidc-provider";

const env = process.env;
const provider = new Provider(env.OIDC_ISSUER, {
  clients: JSON.parse(env.OIDC_CLIENTS),
  jwks: JSON.parse(env.OIDC_JWKS),
  cookies: { keys: ["test-only-cookie-key"] },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
  },
  // every claim in the ID token itself, as Clerk's session JWTs carry them
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: !id.startsWith("unverified"),
          name: `Test ${id}`,
          preferred_username: id,
        };
      },
    };
  },
});

provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith("/interaction/")) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === "login") {
    result = { login: { accountId: String(params.login_hint || "alice") } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(" "));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.redirect(to);
});

const server = http.createServer(provider.callback());
server.listen(Number(env.OIDC_PORT), "127.0.0.1", () => console.log("oidc-provider ready"));

const parent = Number(env.OIDC_PARENT_PID || 0);
if (parent) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(0);
    }
  }, 1000).unref();
}
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
