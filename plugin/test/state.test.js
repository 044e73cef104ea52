import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as S from '../extension/state.js';
import { fixture } from './helpers.js';

const URL1 = 'https://news.example/index.html';

function loaded(url = URL1) {
  return S.navigate(undefined, 7, url);
}

test('navigation to a web page starts pending, to other schemes idle', () => {
  const a = loaded();
  assert.equal(a.state, 'pending');
  assert.equal(a.loadId, 1);
  assert.equal(a.tabId, 7);
  assert.equal(S.navigate(a, 7, 'chrome://settings').state, 'idle');
  assert.equal(S.navigate(a, 7, 'file:///etc/passwd').state, 'idle');
  assert.equal(S.navigate(a, 7, 'http://x.example/').loadId, 2);
});

test('each verdict maps to its state', () => {
  for (const [f, st] of [['verified', 'verified'], ['modified', 'modified'], ['invalid', 'invalid'],
    ['unverifiable', 'unverifiable'], ['none', 'none']]) {
    const t = S.applyReport(loaded(), 1, fixture(f));
    assert.equal(t.state, st, f);
    assert.equal(S.effectiveState(t), st, f);
    assert.deepEqual(t.report, fixture(f));
  }
});

test('an unknown verdict or a non-object report is an error state, not a pass', () => {
  assert.equal(S.verdictState({ verdict: 'fine' }), 'error');
  assert.equal(S.verdictState(null), 'error');
  assert.equal(S.verdictState('verified'), 'error');
});

test('unverifiable is "none" only for a missing manifest or a publisher unknown to the policy', () => {
  assert.equal(S.verdictState(fixture('none')), 'none');
  assert.equal(S.verdictState({ verdict: 'unverifiable', results: [{ code: 'policy.publisher.unknown', severity: 'error' }] }), 'none');
  assert.equal(S.verdictState(fixture('unverifiable')), 'unverifiable');
  assert.equal(S.verdictState({ verdict: 'invalid', results: [{ code: 'manifest.missing' }] }), 'invalid');
});

test('invalid is never downgraded within the same load', () => {
  let t = S.applyReport(loaded(), 1, fixture('invalid'));
  for (const weaker of ['verified', 'modified', 'unverifiable', 'none']) {
    t = S.applyReport(t, 1, fixture(weaker));
    assert.equal(t.state, 'invalid', `after ${weaker}`);
    assert.equal(t.report.verdict, 'invalid', 'the invalid report is kept');
  }
  t = S.applyError(t, 1, { code: 'host.exited', message: 'gone' });
  assert.equal(t.state, 'invalid');
  assert.equal(t.error, null);
  assert.equal(t.checks, 6);
});

test('a new navigation resets invalid', () => {
  const t = S.applyReport(loaded(), 1, fixture('invalid'));
  const n = S.navigate(t, 7, URL1);
  assert.equal(n.state, 'pending');
  assert.equal(n.report, null);
  assert.equal(S.applyReport(n, 2, fixture('verified')).state, 'verified');
});

test('a late answer for the previous load is dropped', () => {
  const first = loaded();
  const second = S.navigate(first, 7, 'https://other.example/');
  const t = S.applyReport(second, first.loadId, fixture('invalid'));
  assert.equal(t, second);
  assert.equal(S.applyError(second, first.loadId, {}), second);
  assert.equal(S.applyResource(second, first.loadId, 'https://x/a.js', { report: fixture('invalid') }), second);
});

test('answers for an idle tab (non-web page) are ignored', () => {
  const t = S.navigate(undefined, 3, 'about:blank');
  assert.equal(S.applyReport(t, t.loadId, fixture('verified')), t);
});

test('non-invalid results replace each other within a load (latest wins)', () => {
  let t = S.applyReport(loaded(), 1, fixture('verified'));
  t = S.applyReport(t, 1, fixture('modified'));
  assert.equal(t.state, 'modified');
  t = S.applyError(t, 1, { code: 'host.timeout', message: 'slow' });
  assert.equal(t.state, 'error');
  assert.deepEqual(t.error, { code: 'host.timeout', message: 'slow' });
  t = S.applyReport(t, 1, fixture('verified'));
  assert.equal(t.state, 'verified');
  assert.equal(t.error, null);
});

test('errors get a code and message even when the host gives none', () => {
  const t = S.applyError(loaded(), 1, undefined);
  assert.equal(t.state, 'error');
  assert.equal(t.error.code, 'host.failed');
  assert.equal(typeof t.error.message, 'string');
});

test('the input state is never mutated', () => {
  const a = loaded();
  const copy = structuredClone(a);
  S.applyReport(a, 1, fixture('invalid'));
  S.applyResource(a, 1, 'https://x/a.js', { report: fixture('invalid') });
  assert.deepEqual(a, copy);
});

test('subresources: invalid script makes the page invalid, modified makes verified modified', () => {
  let t = S.applyReport(loaded(), 1, fixture('verified'));
  t = S.applyResource(t, 1, 'https://news.example/a.js', { report: fixture('verified') });
  assert.equal(S.effectiveState(t), 'verified');
  t = S.applyResource(t, 1, 'https://news.example/b.css', { report: fixture('modified') });
  assert.equal(S.effectiveState(t), 'modified');
  t = S.applyResource(t, 1, 'https://news.example/c.js', { report: fixture('invalid') });
  assert.equal(S.effectiveState(t), 'invalid');
  // the invalid script stays invalid on a later good answer, and the page stays invalid
  t = S.applyResource(t, 1, 'https://news.example/c.js', { report: fixture('verified') });
  assert.equal(t.resources['https://news.example/c.js'].state, 'invalid');
  t = S.applyReport(t, 1, fixture('verified'));
  assert.equal(S.effectiveState(t), 'invalid');
  // an error on a script is listed but does not change the page's state
  let u = S.applyReport(loaded(), 1, fixture('verified'));
  u = S.applyResource(u, 1, 'https://news.example/d.js', { error: { code: 'host.exited', message: 'x' } });
  assert.equal(S.effectiveState(u), 'verified');
  assert.equal(u.resources['https://news.example/d.js'].state, 'error');
});

test('the number of subresources kept is capped', () => {
  let t = S.applyReport(loaded(), 1, fixture('verified'));
  for (let i = 0; i < 100; i++) t = S.applyResource(t, 1, `https://news.example/${i}.js`, { report: fixture('verified') });
  assert.equal(Object.keys(t.resources).length, 64);
});

test('every state has a badge of at most 4 characters and its own icon and colour', () => {
  const icons = new Set(), colours = new Map();
  for (const st of S.STATES) {
    const b = S.badge(st);
    assert.ok(b.text.length <= 4, st);
    assert.match(b.color, /^#[0-9a-f]{6}$/);
    assert.deepEqual(Object.keys(b.path).map(Number), S.ICON_SIZES);
    icons.add(b.path[16]);
    colours.set(st, b.color);
  }
  assert.equal(icons.size, S.STATES.length);
  // the states a reader must tell apart have distinct colours
  const key = ['verified', 'modified', 'invalid', 'unverifiable', 'none', 'error'].map((s) => colours.get(s));
  assert.equal(new Set(key).size, key.length);
  assert.equal(S.badge('nonsense').path[16], 'icons/error-16.png');
});

test('tab states survive JSON (storage.session) unchanged', () => {
  let t = S.applyReport(loaded(), 1, fixture('modified'));
  t = S.applyResource(t, 1, 'https://news.example/a.js', { report: fixture('verified') });
  assert.deepEqual(JSON.parse(JSON.stringify(t)), t);
});

test('a verdict records which bytes it is about; re-fetch carries why', () => {
  const a = S.applyReport(loaded(), 1, fixture('verified'), { source: 'received' });
  assert.equal(a.source, 'received');
  assert.equal(a.sourceNote, null);
  const b = S.applyReport(loaded(), 1, fixture('verified'), { source: 'refetch', note: 'from the cache' });
  assert.equal(b.source, 'refetch');
  assert.equal(b.sourceNote, 'from the cache');
  // anything else is a re-fetch: never claim exact bytes by default
  assert.equal(S.applyReport(loaded(), 1, fixture('verified')).source, 'refetch');
  assert.equal(S.applyReport(loaded(), 1, fixture('verified'), { source: 'exact!' }).source, 'refetch');
  assert.equal(S.applyError(loaded(), 1, { code: 'body.too_large', message: 'big' }, { source: 'received' }).source, 'received');
  assert.equal(S.navigate(a, 7, URL1).source, null, 'a new page starts without');
});

test('invalid on the received bytes stays invalid, and about them, after a re-fetch says verified', () => {
  let t = S.applyReport(loaded(), 1, fixture('invalid'), { source: 'received' });
  t = S.applyReport(t, 1, fixture('verified'), { source: 'refetch', note: 'x' });
  assert.equal(t.state, 'invalid');
  assert.equal(t.source, 'received');
  assert.equal(t.sourceNote, null);
});

test('applyOutcome takes either shape and drops a stale one', () => {
  const t = loaded();
  assert.equal(S.applyOutcome(t, 1, { report: fixture('modified') }, { source: 'received' }).state, 'modified');
  assert.equal(S.applyOutcome(t, 1, { error: { code: 'host.missing', message: 'm' } }).state, 'error');
  assert.equal(S.applyOutcome(t, 1, null).state, 'error');
  assert.equal(S.applyOutcome(t, 0, { report: fixture('invalid') }), t, 'another load: unchanged');
});

test('enforce stops only an invalid verdict; errors and unverifiable pages go through', () => {
  assert.equal(S.enforceAction({ report: fixture('invalid') }), 'block');
  for (const f of ['verified', 'modified', 'unverifiable', 'none']) assert.equal(S.enforceAction({ report: fixture(f) }), 'release', f);
  assert.equal(S.enforceAction({ error: { code: 'host.timeout' } }), 'release');
  assert.equal(S.enforceAction({ report: { verdict: 'weird' } }), 'release');
  assert.equal(S.enforceAction(null), 'release');
});

test('markBlocked marks the current load only; a new navigation clears it', () => {
  const t = S.applyReport(loaded(), 1, fixture('invalid'), { source: 'received' });
  const b = S.markBlocked(t, 1);
  assert.equal(b.blocked, true);
  assert.equal(S.markBlocked(t, 2), t);
  assert.equal(S.navigate(b, 7, URL1).blocked, false);
});
