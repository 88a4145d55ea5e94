// make bench's peer (tests/bench/compare.py): panva's oidc-provider on Node's cluster, stored in
// Redis through redis_adapter.mjs, configured like Stuudium ID's token endpoint. See
// tests/bench/compare.py's docstring for how it is configured and where it differs from us.
//
// Environment: PEER_PORT, PEER_ISSUER, PEER_REDIS_URL, PEER_CLIENT_ID, PEER_CLIENT_SECRET,
// PEER_REDIRECT_URI, PEER_WORKERS (2), PEER_SEED_KEY (enables POST /bench/seed for requests
// carrying it in X-Bench-Seed; the bench alone sets it), PEER_MAX_SECONDS (the primary stops
// everything after this long, whatever happens to its parent).
import cluster from 'node:cluster';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import process from 'node:process';

import Provider from 'oidc-provider';

import redisAdapter from './redis_adapter.mjs';

const WORKERS = Number(process.env.PEER_WORKERS || 2);
const MAX_SECONDS = Number(process.env.PEER_MAX_SECONDS || 1800);
const DAY = 24 * 60 * 60;

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

function primary() {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const env = {
    PEER_JWK: JSON.stringify({ ...jwk, kid: `peer-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' }),
    PEER_COOKIE_KEY: b64url(randomBytes(32)),
  };
  let stopping = false;
  let exitCode = 0;
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    const alive = Object.values(cluster.workers);
    if (alive.length === 0) process.exit(code);
    for (const worker of alive) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGKILL');
      setTimeout(() => process.exit(code), 500);
    }, 5000).unref();
  };
  // the primary leaves only after its workers did (none is left to be adopted)
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`peer: worker ${worker.process.pid} exited (${code ?? signal}); stopping`);
      stop(1);
    }
    if (Object.keys(cluster.workers).length === 0) process.exit(exitCode);
  });
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  setTimeout(() => {
    console.error(`peer: ${MAX_SECONDS} s limit reached; stopping`);
    stop(0);
  }, MAX_SECONDS * 1000).unref();
  // keep the primary alive until stopped (the timer above is unref'd)
  setInterval(() => {}, 60_000);
  for (let i = 0; i < WORKERS; i += 1) cluster.fork(env);
}

function configuration(issuer, Adapter) {
  const clientId = process.env.PEER_CLIENT_ID;
  const accountClaims = (sub) => ({
    sub,
    email: `${sub}@example.ee`,
    email_verified: true,
    given_name: 'Mari',
    family_name: 'Maasikas',
    name: 'Mari Maasikas',
  });
  return {
    adapter: Adapter,
    clients: [{
      client_id: clientId,
      client_secret: process.env.PEER_CLIENT_SECRET,
      redirect_uris: [process.env.PEER_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    cookies: { keys: [process.env.PEER_COOKIE_KEY] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => accountClaims(sub) }),
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // every code and refresh token dies with its session, as ours do
    expiresWithSession: async () => true,
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => issuer,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'openid profile email offline_access',
          audience: issuer,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      IdToken: 600,
      Grant: 14 * DAY,
      Interaction: 900,
      RefreshToken: 14 * DAY,
      Session: 14 * DAY,
    },
  };
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString() || '{}');
}

// Persons with a live session, each holding one grant for the client (as a sign-in leaves them).
async function seedPeople(provider, client, resource, n, scope) {
  const people = [];
  for (let i = 0; i < n; i += 1) {
    const accountId = `bench-${i}-${randomBytes(4).toString('hex')}`;
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope(scope);
    grant.addResourceScope(resource, scope);
    const grantId = await grant.save();
    const sid = b64url(randomBytes(16));
    const loginTs = Math.floor(Date.now() / 1000);
    const session = new provider.Session({
      accountId,
      loginTs,
      amr: ['pwd'],
      acr: 'low',
      authorizations: { [client.clientId]: { grantId, sid, persistsLogout: false } },
    });
    await session.save(14 * DAY);
    people.push({ accountId, grantId, sessionUid: session.uid, sid, loginTs });
  }
  return people;
}

function common(person, client, resource, scope) {
  return {
    client,
    accountId: person.accountId,
    grantId: person.grantId,
    sessionUid: person.sessionUid,
    sid: person.sid,
    expiresWithSession: true,
    resource,
    scope,
    acr: 'low',
    amr: ['pwd'],
    authTime: person.loginTs,
  };
}

// One authorization code (PKCE S256) as the authorization endpoint stores it; its token request.
async function seedCode(provider, client, resource, person, scope) {
  const verifier = b64url(randomBytes(48));
  const redirectUri = client.redirectUris[0];
  const code = new provider.AuthorizationCode({
    ...common(person, client, resource, scope),
    redirectUri,
    codeChallenge: b64url(createHash('sha256').update(verifier).digest()),
    codeChallengeMethod: 'S256',
    nonce: b64url(randomBytes(8)),
    expiresIn: 900,
  });
  const value = await code.save();
  return new URLSearchParams({
    grant_type: 'authorization_code', code: value, redirect_uri: redirectUri, code_verifier: verifier,
  }).toString();
}

// One refresh token as a code exchange with offline_access stores it; its refresh request.
async function seedRefresh(provider, client, resource, person, scope) {
  const token = new provider.RefreshToken({
    ...common(person, client, resource, scope),
    gty: 'authorization_code',
    rotations: 0,
    nonce: b64url(randomBytes(8)),
  });
  const value = await token.save();
  return new URLSearchParams({ grant_type: 'refresh_token', refresh_token: value }).toString();
}

async function seed(provider, issuer, body) {
  const client = await provider.Client.find(process.env.PEER_CLIENT_ID);
  const { kind, n = 0, scope } = body;
  if (kind === 'people') return seedPeople(provider, client, issuer, n, scope);
  const make = { code: seedCode, refresh: seedRefresh }[kind];
  if (!make) throw new Error(`unknown seed kind ${kind}`);
  const out = new Array(n);
  const batch = 256;
  for (let start = 0; start < n; start += batch) {
    const jobs = [];
    for (let i = start; i < Math.min(n, start + batch); i += 1) {
      const person = body.people[i % body.people.length];
      jobs.push(make(provider, client, issuer, person, scope).then((line) => { out[i] = line; }));
    }
    await Promise.all(jobs);
  }
  return out;
}

function worker() {
  const issuer = process.env.PEER_ISSUER;
  const Adapter = redisAdapter(process.env.PEER_REDIS_URL);
  const provider = new Provider(issuer, configuration(issuer, Adapter));
  const seedKey = process.env.PEER_SEED_KEY;
  provider.use(async (ctx, next) => {
    if (ctx.path === '/healthz') {
      ctx.body = 'ok\n';
      return;
    }
    if (seedKey && ctx.path === '/bench/seed' && ctx.method === 'POST'
        && ctx.get('x-bench-seed') === seedKey) {
      ctx.body = await seed(provider, issuer, await readJson(ctx.req));
      return;
    }
    await next();
  });
  provider.on('server_error', (_ctx, err) => console.error('peer: server_error', err));
  let refused = 0;
  provider.on('grant.error', (_ctx, err) => {
    refused += 1;
    if (refused <= 5) console.error(`peer: grant.error ${err.error}: ${err.error_description}`);
  });
  const server = provider.listen(Number(process.env.PEER_PORT), '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  const quit = () => server.close(() => process.exit(0));
  process.on('SIGTERM', quit);
  process.on('disconnect', () => process.exit(0));
}

if (cluster.isPrimary) primary();
else worker();
