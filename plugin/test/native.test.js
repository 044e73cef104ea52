import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, checkReply, classifyError, call, HOST, MAX_REQUEST, MAX_BODY, pickHeaders, base64 } from '../extension/native.js';
import { fixture } from './helpers.js';

test('requests carry type, id and url; only http(s)', () => {
  const r = request('verify', 'https://a.example/', 'id1');
  assert.deepEqual(r, { type: 'verify', id: 'id1', url: 'https://a.example/' });
  assert.deepEqual(request('ping', undefined, 'p'), { type: 'ping', id: 'p' });
  assert.throws(() => request('verify', 'file:///etc/passwd'));
  assert.throws(() => request('bundle', 'javascript:1'));
  assert.throws(() => request('verify', `https://a.example/${'x'.repeat(MAX_REQUEST)}`), /too large/);
  assert.notEqual(request('verify', 'https://a.example/').id, request('verify', 'https://a.example/').id);
});

test('a matching report is accepted', () => {
  const req = request('verify', 'https://a.example/', 'q');
  assert.deepEqual(checkReply(req, { id: 'q', report: fixture('modified') }), { report: fixture('modified') });
});

test('mismatched id, missing report, or wrong shapes are host.bad_reply', () => {
  const req = request('verify', 'https://a.example/', 'q');
  for (const reply of [null, [], 'x', { id: 'other', report: fixture('verified') }, { id: 'q' },
    { id: 'q', report: { verdict: 'verified' } }, { id: 'q', report: { ...fixture('verified'), patient: 2 } }])
    assert.equal(checkReply(req, reply).error.code, 'host.bad_reply', JSON.stringify(reply));
});

test('host errors are passed on with their code', () => {
  const req = request('verify', 'https://a.example/', 'q');
  assert.deepEqual(checkReply(req, { id: 'q', error: { code: 'fetch.failed', message: 'refused' } }),
    { error: { code: 'fetch.failed', message: 'refused' } });
  assert.equal(checkReply(req, { id: 'q', error: { code: 5 } }).error.code, 'host.error');
});

test('bundle and ping replies', () => {
  const b = request('bundle', 'https://a.example/', 'b');
  assert.deepEqual(checkReply(b, { id: 'b', bundle: { patient: 1 } }), { bundle: { patient: 1 } });
  assert.equal(checkReply(b, { id: 'b', bundle: 'x' }).error.code, 'host.bad_reply');
  const p = request('ping', undefined, 'p');
  assert.deepEqual(checkReply(p, { type: 'pong', version: '0.1' }), { pong: { version: '0.1' } });
});

test('browser errors map to dotted codes', () => {
  assert.equal(classifyError(new Error('Specified native messaging host not found.')).code, 'host.missing');
  assert.equal(classifyError(new Error('Access to the specified native messaging host is forbidden.')).code, 'host.forbidden');
  assert.equal(classifyError(new Error('Native host has exited.')).code, 'host.exited');
  assert.equal(classifyError(new Error('Error when communicating with the native messaging host.')).code, 'host.failed');
});

test('call() uses sendNativeMessage with the host name and never throws', async () => {
  let seen;
  const api = { runtime: { sendNativeMessage: async (host, msg) => { seen = [host, msg]; return { id: msg.id, report: fixture('verified') }; } } };
  const out = await call(api, 'verify', 'https://a.example/');
  assert.equal(seen[0], HOST);
  assert.equal(seen[1].url, 'https://a.example/');
  assert.equal(out.report.verdict, 'verified');
  const broken = { runtime: { sendNativeMessage: async () => { throw new Error('Native host has exited.'); } } };
  assert.equal((await call(broken, 'verify', 'https://a.example/')).error.code, 'host.exited');
  assert.equal((await call(broken, 'verify', 'ftp://a.example/')).error.code, 'request.invalid');
  const slow = { runtime: { sendNativeMessage: () => new Promise(() => {}) } };
  assert.equal((await call(slow, 'verify', 'https://a.example/', 20)).error.code, 'host.timeout');
});

test('a received response: status, only the Patient-* headers, the body as base64', () => {
  const body = new Uint8Array([0, 255, 60, 112, 62, 0xe9]);
  const r = request('verify', 'https://a.example/', 'q', {
    status: 200,
    headers: [{ name: 'Set-Cookie', value: 'secret=1' }, { name: 'patient-change', value: 'a.b.c' },
      { name: 'Patient-Change', value: 'd.e.f' }, { name: 'Patient-Origin', value: 'o.r.g' }, { name: 'X', value: 'y' }],
    body,
  });
  assert.deepEqual(r.received, {
    status: 200,
    headers: [{ name: 'patient-change', value: 'a.b.c' }, { name: 'Patient-Change', value: 'd.e.f' }, { name: 'Patient-Origin', value: 'o.r.g' }],
    body: Buffer.from(body).toString('base64'),
  });
  assert.doesNotMatch(JSON.stringify(r), /secret/);
});

test('a received chain goes as SPKI pins, leaf first; anything else is not sent', () => {
  const pin = (i) => `sha256-${Buffer.alloc(32, i).toString('base64')}`;
  const rec = (tlsChain) => request('verify', 'https://a.example/', 'q', { status: 200, headers: [], body: new Uint8Array(1), tlsChain }).received;
  assert.deepEqual(rec([pin(1), pin(2)]).tls_chain, [pin(1), pin(2)]);
  const long = Array.from({ length: 20 }, (_, i) => pin(i));
  assert.deepEqual(rec(long).tls_chain, [...long.slice(0, 15), long[19]]);
  assert.equal(rec([]).tls_chain, undefined);
  assert.equal(rec(undefined).tls_chain, undefined);
  assert.equal(rec([pin(1), 'sha256-AAAA']).tls_chain, undefined);
});

test('base64 of large bodies matches node, piece by piece', () => {
  const b = new Uint8Array(200000);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7919) & 255;
  assert.equal(base64(b), Buffer.from(b).toString('base64'));
});

test('CDP\'s header object (repeats joined by newlines) becomes one header each', () => {
  assert.deepEqual(pickHeaders({ 'Patient-Change': 'a.b.c\nd.e.f', 'content-type': 'text/html' }),
    [{ name: 'Patient-Change', value: 'a.b.c' }, { name: 'Patient-Change', value: 'd.e.f' }]);
  assert.deepEqual(pickHeaders(null), []);
  assert.deepEqual(pickHeaders([{ name: 'Patient-Origin', value: 3 }, null]), []);
});

test('a body over the verifier\'s cap is refused before it is sent, with body.too_large', async () => {
  let sent = false;
  const api = { runtime: { sendNativeMessage: async () => { sent = true; return {}; } } };
  const out = await call(api, 'verify', 'https://a.example/', 1000, { status: 200, headers: [], body: new Uint8Array(MAX_BODY + 1) });
  assert.equal(out.error.code, 'body.too_large');
  assert.match(out.error.message, /67108864/);
  assert.equal(sent, false);
});

test('the host\'s answer to an over-cap request has no id and is passed on', () => {
  const req = request('verify', 'https://a.example/', 'q');
  assert.deepEqual(checkReply(req, { error: { code: 'request.too_large', message: 'over the cap' } }),
    { error: { code: 'request.too_large', message: 'over the cap' } });
  assert.equal(checkReply(req, { error: { code: 'fetch.failed', message: 'm' } }).error.code, 'host.bad_reply');
});
