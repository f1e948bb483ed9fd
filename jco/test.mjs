// The mangopay-auth component on Node.js: the release .wasm, transpiled by jco, with WASI from
// @bytecodealliance/preview2-shim, against the harness's mock Mangopay on 127.0.0.1.
//
// Run by `cargo test -p host-test --test jco` (part of `cargo test --workspace`), which builds
// and transpiles the component, starts the mocks and sets:
//   JCO_AUTH_MODULE          the transpiled auth component (mangopay-auth.js)
//   JCO_LIST_USERS_MODULE    the transpiled composition of examples/list-users with it
//   MOCK_MANGOPAY_URL        a mock whose tokens live 1200 s (account CLIENT_ID/API_KEY below)
//   MOCK_MANGOPAY_SHORT_URL  a mock whose tokens live 2 s (same account)
//   MANGOPAY_CLIENT_ID, MANGOPAY_API_KEY, MANGOPAY_BASE_URL  the default client's variables
// The Rust test then checks how many token requests each mock received.
//
// How jco maps the WIT: the exported interface is the `auth` namespace; `resource client` is
// the class `auth.Client` (`create` is a static method); records are objects with camelCase
// fields; `option<T>` is T or undefined; u64 is a BigInt; enums are strings; variants are
// `{tag, val}`; the error of a `result` is thrown as a ComponentError carrying it in `payload`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this through \`cargo test -p host-test --test jco\``);
  }
  return value;
}

const MOCK = required('MOCK_MANGOPAY_URL');
const SHORT = required('MOCK_MANGOPAY_SHORT_URL');
const CLIENT_ID = required('MANGOPAY_CLIENT_ID');
const API_KEY = required('MANGOPAY_API_KEY');
const { auth } = await import(pathToFileURL(required('JCO_AUTH_MODULE')).href);

const config = (baseUrl, extra = {}) => ({
  clientId: CLIENT_ID,
  apiKey: API_KEY,
  environment: 'sandbox',
  baseUrl,
  ...extra,
});

const usersRequest = (base) => ({
  method: 'GET',
  url: `${base}/v2.01/${CLIENT_ID}/users?per_page=1`,
  headers: [['Accept', 'application/json'], ['authorization', 'Bearer stale']],
});

/** The error payload a component call threw, or a failed assertion if it did not throw. */
function thrown(call) {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof Error, `a ComponentError, not ${error}`);
    assert.ok('payload' in error, `a ComponentError with a payload, not ${error.stack}`);
    return error.payload;
  }
  assert.fail('the call should have failed');
}

/** A 127.0.0.1 port with nothing listening on it. */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a client fetches one token and authorizes requests with it', async () => {
  const client = auth.Client.create(config(MOCK));
  const token = client.getToken();
  assert.equal(token.tokenType.toLowerCase(), 'bearer');
  assert.equal(typeof token.expiresInSeconds, 'bigint');
  assert.ok(token.expiresInSeconds > 1190n && token.expiresInSeconds <= 1200n, `${token.expiresInSeconds}`);
  // The wall clock under Node is the real one.
  const now = BigInt(Math.floor(Date.now() / 1000));
  assert.ok(token.expiresAtUnixSeconds >= now + 1190n && token.expiresAtUnixSeconds <= now + 1201n);

  let authorized;
  for (let i = 0; i < 50; i++) {
    authorized = client.authorizeRequest(usersRequest(MOCK));
    // The cache answers: the same token every time, no new token request.
    assert.equal(client.getToken().accessToken, token.accessToken);
  }
  const auths = authorized.headers.filter(([name]) => name.toLowerCase() === 'authorization');
  assert.deepEqual(auths, [['Authorization', `Bearer ${token.accessToken}`]]);
  assert.equal(authorized.url, usersRequest(MOCK).url);

  // Send it from Node and let the component read the answer.
  const response = await fetch(authorized.url, { headers: authorized.headers });
  const body = new Uint8Array(await response.arrayBuffer());
  assert.equal(response.status, 200, new TextDecoder().decode(body));
  const verdict = client.checkResponse(authorized, {
    status: response.status,
    headers: [...response.headers],
    body,
  });
  assert.deepEqual(verdict, { tag: 'accepted' });
});

test('the free functions use the default client from MANGOPAY_* variables', () => {
  const first = auth.getToken();
  const authorized = auth.authorizeRequest(usersRequest(MOCK));
  assert.ok(authorized.headers.some(([, value]) => value === `Bearer ${first.accessToken}`));
  assert.equal(auth.getToken().accessToken, first.accessToken);
});

test('send calls the API with the token and returns its answer', () => {
  const users = auth.send({
    method: 'GET',
    path: '/v2.01/{ClientId}/users?per_page=1',
    headers: [['Accept', 'application/json']],
    body: undefined,
  });
  assert.equal(users.status, 200);
  assert.deepEqual(users.verdict, { tag: 'accepted' });
  assert.equal(JSON.parse(new TextDecoder().decode(users.body))[0].Id, 'user_1');

  const user = new TextEncoder().encode('{"FirstName":"Zoë"}');
  const created = auth.send({
    method: 'POST',
    path: '/v2.01/{ClientId}/users/natural',
    headers: [['Content-Type', 'application/json']],
    body: user,
  });
  assert.equal(created.status, 201);
  assert.deepEqual(new Uint8Array(created.body), user);
  assert.equal(
    thrown(() => auth.send({ method: 'GET', path: '//evil.example/x', headers: [] })).tag,
    'invalid-request',
  );
});

test('errors are typed variants, thrown as ComponentError with the variant as payload', () => {
  assert.equal(
    thrown(() => auth.Client.create(config(MOCK, { clientId: '' }))).tag,
    'invalid-config',
  );
  assert.equal(
    thrown(() => auth.Client.create(config('http://mangopay.example'))).tag,
    'insecure-url',
  );

  // The token is not handed to another host, and no token is fetched for it.
  const client = auth.Client.create(config(MOCK));
  const foreign = thrown(() =>
    client.authorizeRequest({ method: 'GET', url: 'https://evil.example/v2.01/x/users', headers: [] }),
  );
  assert.equal(foreign.tag, 'foreign-host');
  assert.equal(typeof foreign.val, 'string');

  // Wrong API key: the mock answers Mangopay's documented 401; the client cools down.
  const wrong = auth.Client.create(config(MOCK, { apiKey: 'sk-wrong' }));
  const refused = thrown(() => wrong.getToken());
  assert.equal(refused.tag, 'invalid-credentials');
  assert.equal(refused.val.status, 401);
  assert.equal(refused.val.errorType, 'invalid_credentials');
  assert.equal(typeof refused.val.id, 'string');
  assert.equal(refused.val.retryInSeconds, 60n);
  // During the cool-down the same error comes back without a token request.
  const again = thrown(() => wrong.getToken());
  assert.equal(again.tag, 'invalid-credentials');
  assert.ok(again.val.retryInSeconds <= 60n);
  const text = JSON.stringify(refused, (_, v) => (typeof v === 'bigint' ? `${v}` : v));
  assert.ok(!text.includes('sk-wrong'), 'no API key in an error');
});

test('a refused connection is a transport error, after the retries', async () => {
  const base = `http://127.0.0.1:${await closedPort()}`;
  const client = auth.Client.create(
    config(base, { retry: { maxAttempts: 2, initialBackoffMs: 10 } }),
  );
  const error = thrown(() => client.getToken());
  assert.equal(error.tag, 'transport');
  assert.equal(error.val.kind, 'connection-refused', error.val.detail);
});

test('a server that never answers times out', async () => {
  // The kernel accepts the connection even while the component blocks this thread; nobody
  // ever answers. Under preview2-shim, connect-ms is Node's socket idle timeout, so it fires
  // first here (ConnectionTimeout); the component's own deadline is connect + first-byte.
  const sockets = [];
  const server = net.createServer((socket) => sockets.push(socket));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const base = `http://127.0.0.1:${server.address().port}`;
    const client = auth.Client.create(
      config(base, {
        timeouts: { connectMs: 400, firstByteMs: 300, betweenBytesMs: 300 },
        retry: { maxAttempts: 1 },
      }),
    );
    const started = performance.now();
    const error = thrown(() => client.getToken());
    const elapsed = performance.now() - started;
    assert.equal(error.tag, 'transport');
    assert.equal(error.val.kind, 'timeout', error.val.detail);
    assert.ok(elapsed >= 250 && elapsed < 3000, `timed out after ${elapsed} ms`);
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
  }
});

test('a dripping body is cut off by the component deadline on the WASI clock', async () => {
  // In another process: a component call blocks this thread, so a server here could not
  // send a byte. Headers, then one body byte every 50 ms, forever: never idle, so only the
  // component's own deadline (between-bytes-ms for the whole body, a monotonic-clock
  // pollable) ends it.
  const drip = spawn(process.execPath, ['--input-type=module', '-e', `
    import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\n' +
          'transfer-encoding: chunked\\r\\n\\r\\n');
        const timer = setInterval(() => socket.write('1\\r\\n \\r\\n'), 50);
        socket.on('close', () => clearInterval(timer));
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));
    setTimeout(() => process.exit(0), 20000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [port] = await once(drip.stdout, 'data');
    const base = `http://127.0.0.1:${String(port).trim()}`;
    const client = auth.Client.create(
      config(base, { timeouts: { betweenBytesMs: 400 }, retry: { maxAttempts: 1 } }),
    );
    const started = performance.now();
    const error = thrown(() => client.getToken());
    const elapsed = performance.now() - started;
    assert.equal(error.tag, 'transport');
    assert.equal(error.val.kind, 'timeout');
    assert.match(error.val.detail, /response body took longer than the component allows/);
    assert.ok(elapsed >= 350 && elapsed < 3000, `timed out after ${elapsed} ms`);
  } finally {
    drip.kill();
  }
});

test('a short-lived token is renewed on the real monotonic clock', async () => {
  // SHORT issues 2 s tokens: the margin is capped at half the lifetime, renewal after 1 s.
  const client = auth.Client.create(config(SHORT));
  const first = client.getToken();
  assert.ok(first.expiresInSeconds <= 2n);
  assert.equal(client.getToken().accessToken, first.accessToken);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const second = client.getToken();
  assert.notEqual(second.accessToken, first.accessToken);
});

test('the composed list-users component runs on Node too', async () => {
  // examples/list-users composed with the auth component (compose.wac): one component whose
  // only export is `list-users`; its auth instance reads the MANGOPAY_* variables.
  const { listUsers } = await import(pathToFileURL(required('JCO_LIST_USERS_MODULE')).href);
  for (let i = 0; i < 3; i++) {
    const users = JSON.parse(listUsers(1));
    assert.equal(users[0].Id, 'user_1');
  }
});
