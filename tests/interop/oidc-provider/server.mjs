// A third-party OpenID provider for cloakroom's interop tests: node-oidc-provider configured
// like a strict production provider (PKCE S256 required, rotating refresh tokens with reuse
// detection, JWT access tokens per resource indicator, back-channel logout), plus
//   - its own minimal interaction pages (a plain login form; consent is granted automatically),
//   - one JSON line per interesting event on stdout,
//   - GET /__test/stats with counters, so tests can assert "one refresh per expiry, no reuse".
//
// Configuration: the JSON document in env OIDC_FIXTURE_CONFIG (see `config` below); the port
// comes from argv[2] or env PORT (0 = any free port). The first stdout line is
// {"event":"listening","port":N,"issuer":"http://127.0.0.1:N"}.
// Everything is in memory (the default adapter): this is a test fixture, not a deployment.

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const raw = JSON.parse(process.env.OIDC_FIXTURE_CONFIG ?? '{}');
const config = {
  clientId: raw.client_id ?? 'cloakroom-bff',
  clientSecret: raw.client_secret ?? 'cloakroom-bff-secret-for-tests-only',
  redirectUris: raw.redirect_uris ?? [],
  postLogoutRedirectUris: raw.post_logout_redirect_uris ?? [],
  backchannelLogoutUri: raw.backchannel_logout_uri ?? null,
  resource: raw.resource ?? 'http://127.0.0.1:1/',
  // More resource indicators (RFC 8707) this client may ask tokens for, each its own audience.
  extraResources: raw.extra_resources ?? [],
  // The client credentials grant (RFC 6749 §4.4) for this client.
  clientCredentials: raw.client_credentials ?? false,
  accessTokenTtl: raw.access_token_ttl ?? Number(process.env.ACCESS_TTL ?? 300),
  refreshTokenTtl: raw.refresh_token_ttl ?? 24 * 60 * 60,
  idTokenTtl: raw.id_token_ttl ?? 60 * 60,
  accessTokenAlg: raw.access_token_alg ?? 'RS256',
  // Most deployed providers put profile claims into the ID token; node-oidc-provider's default
  // (true) leaves them for userinfo only, which a resource-bound access token cannot call.
  conformIdTokenClaims: raw.conform_id_token_claims ?? false,
  // OpenID Connect Core 11: offline_access is ignored unless the request has prompt=consent
  // (node-oidc-provider enforces it). false = refresh tokens only for a granted offline_access
  // (strict); true = for every authorization-code grant, as some providers do.
  refreshWithoutOfflineAccess: raw.refresh_tokens_without_offline_access ?? false,
  // How the client authenticates: client_secret_basic (default) or private_key_jwt with the
  // public keys in client_jwks (a JWK set) — no secret then.
  tokenEndpointAuthMethod: raw.token_endpoint_auth_method ?? 'client_secret_basic',
  clientJwks: raw.client_jwks ?? null,
  // Pushed authorization requests (RFC 9126): offered by default; required when true.
  requirePar: raw.require_par ?? false,
  // DPoP (RFC 9449): proofs accepted and tokens bound to their key when true.
  dpop: raw.dpop ?? false,
  // With dpop: every DPoP proof must carry a nonce of this provider (features.dPoP.nonceSecret
  // + requireNonce); a proof without one, or with an unknown one, is answered `use_dpop_nonce`
  // with a fresh nonce in the DPoP-Nonce header.
  dpopRequireNonce: raw.dpop_require_nonce ?? false,
  users: raw.users ?? [{ username: 'alice', password: 'alice-password', sub: 'alice' }],
};
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

// ---------------------------------------------------------------- events and counters

const stats = {
  authorization_codes_redeemed: 0,
  refreshes: 0,
  client_credentials: 0,
  refresh_tokens_issued: 0,
  refresh_tokens_consumed: 0,
  refresh_token_reuse: 0,
  refresh_invalid_grant: 0,
  dpop_nonce_challenges: 0,
  grants_revoked: 0,
  revocations: 0,
  end_sessions: 0,
  backchannel_success: 0,
  backchannel_error: 0,
  server_errors: 0,
  logins: 0,
  failed_logins: 0,
};

// Token values never reach the log: opaque tokens are identified by a hash prefix.
const fingerprint = (value) => (value ? createHash('sha256').update(String(value)).digest('base64url').slice(0, 12) : null);

function log(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, at: Date.now() / 1000, ...fields })}\n`);
}

// ---------------------------------------------------------------- accounts

const accounts = new Map(config.users.map((u) => [u.sub, u]));
const byUsername = new Map(config.users.map((u) => [u.username, u]));

async function findAccount(_ctx, sub) {
  const user = accounts.get(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, preferred_username: user.username, name: user.username };
    },
  };
}

// ---------------------------------------------------------------- keys

function signingKeys() {
  const jwk = (pair, alg, kidPrefix) => ({
    ...pair.privateKey.export({ format: 'jwk' }),
    use: 'sig',
    alg,
    kid: `${kidPrefix}-${randomBytes(6).toString('hex')}`,
  });
  return {
    keys: [
      jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256', 'rsa'),
      jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ES256', 'ec'),
    ],
  };
}

// ---------------------------------------------------------------- provider

function isLoopback(url) {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

function buildProvider(issuer) {
  const client = {
    client_id: config.clientId,
    client_secret: config.clientSecret,
    redirect_uris: config.redirectUris,
    post_logout_redirect_uris: config.postLogoutRedirectUris,
    grant_types: ['authorization_code', 'refresh_token', ...(config.clientCredentials ? ['client_credentials'] : [])],
    response_types: ['code'],
    token_endpoint_auth_method: config.tokenEndpointAuthMethod,
  };
  if (config.tokenEndpointAuthMethod === 'private_key_jwt') {
    delete client.client_secret;
    client.jwks = config.clientJwks;
    client.token_endpoint_auth_signing_alg = 'ES256';
  }
  if (config.backchannelLogoutUri) {
    client.backchannel_logout_uri = config.backchannelLogoutUri;
    client.backchannel_logout_session_required = true;
  }

  const provider = new Provider(issuer, {
    clients: [client],
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount,
    scopes: ['openid', 'profile', 'offline_access', 'notes'],
    // acr, amr and auth_time as the default claims have them (this list replaces the default).
    claims: { acr: null, amr: null, auth_time: null, openid: ['sub'], profile: ['preferred_username', 'name'] },
    // The one authentication context this provider's password form gives.
    acrValues: ['urn:cloakroom:pwd'],
    conformIdTokenClaims: config.conformIdTokenClaims,
    responseTypes: ['code'],
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, c, source) => c.grantTypeAllowed('refresh_token')
      && (config.refreshWithoutOfflineAccess || source.scopes.has('offline_access')),
    // The provider refuses outbound requests to loopback and private addresses; the BFF under
    // test listens on 127.0.0.1, so its back-channel logout endpoint must stay reachable. Other
    // destinations keep the provider's SSRF-guarded dispatcher.
    fetch: (url, options) => {
      if (isLoopback(String(url))) delete options.dispatcher;
      return globalThis.fetch(url, options);
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: config.requirePar },
      userinfo: { enabled: true },
      clientCredentials: { enabled: config.clientCredentials },
      dPoP: config.dpopRequireNonce
        ? { enabled: config.dpop, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: config.dpop },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // The confirmation page as a form a scripted browser can submit as it is.
        logoutSource: async (ctx, form) => {
          const confirm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>');
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><head><title>Sign out</title></head><body><h1>Sign out?</h1>${confirm}</body></html>`;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = '<!DOCTYPE html><html><head><title>Signed out</title></head><body><h1>Signed out</h1></body></html>';
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => config.resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== config.resource && !config.extraResources.includes(resourceIndicator)) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'notes',
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.accessTokenTtl,
            jwt: { sign: { alg: config.accessTokenAlg } },
          };
        },
      },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: config.idTokenTtl,
      RefreshToken: config.refreshTokenTtl,
      Interaction: 10 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>${escapeHtml(out.error)}</h1><p>${escapeHtml(out.error_description)}</p></body></html>`;
    },
  });

  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type;
    if (grantType === 'refresh_token') stats.refreshes += 1;
    if (grantType === 'authorization_code') stats.authorization_codes_redeemed += 1;
    if (grantType === 'client_credentials') stats.client_credentials += 1;
    log('grant.success', { grant_type: grantType });
  });
  provider.on('grant.error', (ctx, err) => {
    const grantType = ctx.oidc?.params?.grant_type;
    if (err.error === 'use_dpop_nonce') stats.dpop_nonce_challenges += 1;
    if (grantType === 'refresh_token' && err.error === 'invalid_grant') {
      stats.refresh_invalid_grant += 1;
      if (err.error_detail === 'refresh token already used') stats.refresh_token_reuse += 1;
    }
    log('grant.error', { grant_type: grantType, error: err.error, detail: err.error_detail });
  });
  provider.on('refresh_token.saved', (token) => {
    stats.refresh_tokens_issued += 1;
    log('refresh_token.saved', { token: fingerprint(token.jti), grant: token.grantId, rotations: token.rotations ?? 0 });
  });
  provider.on('refresh_token.consumed', (token) => {
    stats.refresh_tokens_consumed += 1;
    log('refresh_token.consumed', { token: fingerprint(token.jti), grant: token.grantId });
  });
  provider.on('grant.revoked', (ctx, grantId) => {
    stats.grants_revoked += 1;
    log('grant.revoked', { grant: grantId, route: ctx.oidc?.route });
  });
  // Revocation has no success event of its own.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200) {
      stats.revocations += 1;
      log('revocation.success');
    }
  });
  provider.on('end_session.success', () => {
    stats.end_sessions += 1;
    log('end_session.success');
  });
  provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
    stats.backchannel_success += 1;
    log('backchannel.success', { client: client.clientId, sub: accountId, sid });
  });
  provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
    stats.backchannel_error += 1;
    log('backchannel.error', { client: client.clientId, sub: accountId, sid, message: err.message, cause: err.cause?.message });
  });
  provider.on('server_error', (_ctx, err) => {
    stats.server_errors += 1;
    log('server_error', { message: err.message, stack: err.stack });
  });
  provider.on('authorization.error', (_ctx, err) => log('authorization.error', { error: err.error, detail: err.error_detail }));

  return provider;
}

// ---------------------------------------------------------------- interaction pages

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function loginPage(uid, message) {
  return `<!DOCTYPE html><html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="hidden" name="uid" value="${escapeHtml(uid)}"/>
<input type="text" name="username" autocomplete="username"/>
<input type="password" name="password" autocomplete="current-password"/>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

// Grants exactly what was asked for, as a user clicking "allow" would.
async function grantConsent(provider, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  } else {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  const prompt = details.prompt.name;

  if (req.method === 'GET' && !action) {
    if (prompt === 'login') return send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
    if (prompt === 'consent') {
      const grantId = await grantConsent(provider, details);
      log('consent.granted', { scope: details.params.scope });
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return send(res, 400, 'text/plain', `unsupported prompt ${prompt}`);
  }

  if (req.method === 'POST' && action === 'login' && prompt === 'login') {
    const form = await readForm(req);
    const user = byUsername.get(form.get('username') ?? '');
    if (!user || user.password !== form.get('password')) {
      stats.failed_logins += 1;
      log('login.failed');
      return send(res, 401, 'text/html; charset=utf-8', loginPage(uid, 'Invalid username or password.'));
    }
    stats.logins += 1;
    log('login.success', { sub: user.sub });
    return provider.interactionFinished(req, res, { login: { accountId: user.sub, acr: 'urn:cloakroom:pwd', amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'text/plain', 'method not allowed');
}

// ---------------------------------------------------------------- HTTP server

let provider;
let providerCallback;

const server = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://fixture').pathname;
  try {
    if (path === '/__test/stats' && req.method === 'GET') {
      return send(res, 200, 'application/json', JSON.stringify(stats));
    }
    const m = path.match(/^\/interaction\/([\w-]+)(?:\/(login))?$/);
    if (m) return await interaction(provider, req, res, m[1], m[2]);
    return providerCallback(req, res);
  } catch (err) {
    stats.server_errors += 1;
    log('server_error', { message: err.message, name: err.name });
    if (!res.headersSent) send(res, err instanceof errors.SessionNotFound ? 400 : 500, 'text/plain', err.name);
  }
});

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const issuer = `http://127.0.0.1:${actual}`;
  provider = buildProvider(issuer);
  providerCallback = provider.callback();
  log('listening', { port: actual, issuer });
});

// The harness kills us with SIGKILL when the test ends; SIGTERM/SIGINT end cleanly.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
