import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capture, placeholder, tlsChain } from '../extension/capture.js';
import { MAX_BODY } from '../extension/native.js';

// A StreamFilter stand-in: records what the extension passes on to the page.
function fakeApi({ throws = false } = {}) {
  const f = { written: [], closed: false, write(d) { this.written.push(new Uint8Array(d)); }, close() { this.closed = true; } };
  return {
    filter: f,
    webRequest: { filterResponseData() { if (throws) throw new Error('no access'); return f; } },
  };
}
const enc = (s) => new TextEncoder().encode(s);
const dec = (chunks) => new TextDecoder().decode(Buffer.concat(chunks.map((c) => Buffer.from(c))));
const D = { requestId: 'r1', tabId: 3, type: 'main_frame', url: 'https://a.example/' };
const H = { statusCode: 200, url: 'https://a.example/', responseHeaders: [{ name: 'Patient-Change', value: 'x.y.z' }] };

test('not held: every chunk reaches the page at once, the copy is exact', async () => {
  const api = fakeApi();
  const c = capture(api, D);
  c.headers(H);
  api.filter.ondata({ data: enc('<p>one').buffer });
  assert.equal(dec(api.filter.written), '<p>one', 'passed on before the end');
  api.filter.ondata({ data: enc(' two</p>').buffer });
  api.filter.onstop();
  const r = await c.done;
  assert.equal(new TextDecoder().decode(r.received.body), '<p>one two</p>');
  assert.equal(r.received.status, 200);
  assert.deepEqual(r.received.headers, H.responseHeaders);
  assert.ok(api.filter.closed);
});

test('held: nothing reaches the page until release; block sends only the placeholder', async () => {
  for (const how of ['release', 'block']) {
    const api = fakeApi();
    const c = capture(api, D, { hold: true });
    c.headers(H);
    api.filter.ondata({ data: enc('<p>secret</p>').buffer });
    api.filter.onstop();
    const r = await c.done;
    assert.equal(new TextDecoder().decode(r.received.body), '<p>secret</p>');
    assert.equal(api.filter.written.length, 0, 'held');
    assert.equal(api.filter.closed, false);
    if (how === 'release') c.release(); else c.block(placeholder('https://a.example/<x>', 'body.mismatch'));
    c.release(); // once only
    const out = dec(api.filter.written);
    if (how === 'release') assert.equal(out, '<p>secret</p>');
    else {
      assert.doesNotMatch(out, /secret/);
      assert.match(out, /body\.mismatch/);
      assert.match(out, /&#60;x&#62;/, 'the URL is escaped');
      assert.doesNotMatch(out, /<script/i);
    }
    assert.ok(api.filter.closed);
  }
});

test('headers that arrive after the body still count; a redirect\'s do not', async () => {
  const api = fakeApi();
  const c = capture(api, D);
  api.filter.ondata({ data: enc('x').buffer });
  api.filter.onstop();
  c.headers({ ...H, statusCode: 302, url: 'https://a.example/old' });
  let settled = false;
  c.done.then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, 'waits for the final response');
  c.headers({ ...H, url: 'https://a.example/new' });
  const r = await c.done;
  assert.equal(r.received.status, 200);
  assert.equal(c.url, 'https://a.example/new');
});

test('no filter, or a filter error: unavailable (the caller re-fetches), a held page is released', async () => {
  const c = capture(fakeApi({ throws: true }), D, { hold: true });
  assert.match((await c.done).unavailable, /no access/);
  const api = fakeApi();
  const h = capture(api, D, { hold: true });
  api.filter.ondata({ data: enc('abc').buffer });
  api.filter.error = 'Channel redirected';
  api.filter.onerror();
  assert.match((await h.done).unavailable, /Channel redirected/);
  assert.equal(dec(api.filter.written), 'abc', 'released, not lost');
});

test('over the body cap: the page gets every byte, held or not, and the capture says too large', async () => {
  const api = fakeApi();
  const c = capture(api, D, { hold: true });
  c.headers(H);
  const big = new Uint8Array(MAX_BODY);
  api.filter.ondata({ data: big.buffer });
  assert.equal(api.filter.written.length, 0, 'still held at the cap');
  api.filter.ondata({ data: enc('!').buffer });
  api.filter.ondata({ data: enc('?').buffer });
  api.filter.onstop();
  const r = await c.done;
  assert.equal(r.tooLarge, true);
  assert.equal(api.filter.written.reduce((n, b) => n + b.length, 0), MAX_BODY + 2);
  assert.ok(api.filter.closed);
});

test('the chain Firefox verified goes with the bytes, as SPKI pins leaf first; only a secure https one', async () => {
  const digest = (b) => ({ subjectPublicKeyInfoDigest: { sha256: Buffer.alloc(32, b).toString('base64') } });
  const pin = (b) => `sha256-${Buffer.alloc(32, b).toString('base64')}`;
  const sec = (si) => ({ webRequest: { getSecurityInfo: async (id, o) => (id === 'r1' && o.certificateChain ? si : null) } });
  assert.deepEqual(await tlsChain(sec({ state: 'secure', certificates: [digest(1), digest(2)] }), D), [pin(1), pin(2)]);
  assert.equal(await tlsChain(sec({ state: 'broken', certificates: [digest(1)] }), D), null);
  assert.equal(await tlsChain(sec({ state: 'secure', certificates: [digest(1), {}] }), D), null);
  assert.equal(await tlsChain(sec({ state: 'secure', certificates: [digest(1)] }), { ...D, url: 'http://a.example/' }), null);
  assert.equal(await tlsChain({ webRequest: {} }, D), null);
  assert.equal(await tlsChain({ webRequest: { getSecurityInfo: async () => { throw new Error('gone'); } } }, D), null);

  const api = fakeApi();
  const c = capture(api, D);
  c.headers(H, [pin(1), pin(2)]);
  api.filter.ondata({ data: enc('x').buffer });
  api.filter.onstop();
  assert.deepEqual((await c.done).received.tlsChain, [pin(1), pin(2)]);
});
