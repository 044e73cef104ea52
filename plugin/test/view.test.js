import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as S from '../extension/state.js';
import { model } from '../extension/render.js';
import { build } from '../extension/view.js';
import { fixture, fakeDocument } from './helpers.js';

function view(name) {
  const t = S.navigate(undefined, 5, fixture(name).url);
  return build(fakeDocument(), model(S.applyReport(t, t.loadId, fixture(name))));
}

test('every fixture builds without touching markup APIs', () => {
  for (const f of ['verified', 'modified', 'invalid', 'unverifiable', 'none', 'hostile']) {
    const root = view(f);
    assert.equal(root.tagName, 'MAIN');
    assert.ok(root.textContent.length > 20, f);
  }
});

test('hostile report strings are text nodes, never elements', () => {
  const root = view('hostile');
  const tags = new Set(root.findAll(() => true).map((e) => e.tagName));
  for (const t of ['IMG', 'SCRIPT', 'SVG', 'IFRAME', 'B', 'I', 'U', 'BLINK', 'TEXTAREA'])
    if (t !== 'IMG') assert.ok(!tags.has(t), `${t} element created`);
  // the only <img> is the verdict icon, with our own src
  const imgs = root.findAll((e) => e.tagName === 'IMG');
  assert.equal(imgs.length, 1);
  assert.equal(imgs[0].getAttribute('src'), 'icons/modified-48.png');
  assert.ok(root.textContent.includes('<img src=x onerror=alert(3)>'));
  assert.ok(root.textContent.includes("<script>alert('name')</script>"));
  assert.ok(root.textContent.includes('</textarea><iframe src=javascript:alert(4)>'));
  // no link to javascript:
  for (const a of root.findAll((e) => e.tagName === 'A')) assert.match(a.getAttribute('href'), /^https?:/);
});

test('modified view lists who / where / what / why', () => {
  const root = view('modified');
  const s = root.textContent;
  for (const want of ['Modified by middleboxes you trust', '3 changes by 1 middlebox', 'Hop 1: Acme Privacy Gateway',
    '0F1E2D3C4B5A6978', 'line 9, column 5, byte 412', 'deleted 61 bytes', 'tracker removed (tracker.removed)',
    'easyprivacy:1732', 'third-party analytics script', 'inserted 52 bytes', 'version 42, expires 2026-12-04T00:00:00Z'])
    assert.ok(s.includes(want), want);
  const link = root.find((e) => e.tagName === 'A');
  assert.equal(link.getAttribute('href'), 'https://gw.acme.example/.well-known/patient/disclosure.json');
  assert.equal(link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(root.findAll((e) => e.tagName === 'LI' && e.hasClass('edit')).length, 3);
});

test('invalid view shows the failed checks first', () => {
  const root = view('invalid');
  const failed = root.find((e) => e.tagName === 'SECTION' && e.hasClass('failed'));
  assert.ok(failed);
  assert.ok(failed.textContent.includes('policy.middlebox.unknown'));
  assert.ok(failed.textContent.includes('body.mismatch'));
  assert.ok(!failed.textContent.includes('tls.upstream.weak'), 'warnings go to notes');
  const sections = root.findAll((e) => e.tagName === 'SECTION').map((e) => e.className);
  assert.ok(sections.indexOf('failed') < sections.indexOf('changes'));
  assert.ok(root.textContent.includes('NO — not allowed by your policy'));
});

test('error view explains the failure', () => {
  const p = S.navigate(undefined, 1, 'https://a.example/');
  const root = build(fakeDocument(), model(S.applyError(p, 1, { code: 'host.missing', message: 'Specified native messaging host not found.' })));
  assert.equal(root.getAttribute('data-state'), 'error');
  assert.ok(root.textContent.includes('host.missing'));
});

test('the TLS row says who decrypted, and marks an unknown interceptor', () => {
  const withTls = (status, by) => {
    const rep = JSON.parse(JSON.stringify(fixture('modified')));
    rep.interception = { status, by, ca: by ? 'sha256-AAAA' : null, anchor: 'sha256-BBBB' };
    rep.changes[rep.changes.length - 1].tls = { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', verified: true };
    const t = S.navigate(undefined, 5, rep.url);
    return build(fakeDocument(), model(S.applyReport(t, t.loadId, rep)));
  };
  const tlsRow = (root) => root.find((e) => e.tagName === 'DIV' && e.hasClass('tls'));
  let row = tlsRow(withTls('allowed', 'corp-proxy'));
  assert.ok(row, 'TLS row shown');
  assert.equal(row.textContent, 'TLSdecrypted by corp-proxy, TLS 1.3 to the origin, certificate verified');
  assert.ok(!row.hasClass('bad'));
  row = tlsRow(withTls('unknown', null));
  assert.equal(row.textContent, 'TLSintercepted by an unknown party');
  assert.ok(row.hasClass('bad'), 'an unknown interceptor is shown as a failure');
  // no interception judged (plain http, offline): no row at all
  assert.equal(tlsRow(view('verified')), null);
});
