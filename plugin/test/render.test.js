import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as S from '../extension/state.js';
import { model, text, safeHref, reasonLabel, evidenceFileName, decryptionText, MAX_TEXT, MAX_EDITS } from '../extension/render.js';
import { fixture } from './helpers.js';

function tab(name) {
  const t = S.navigate(undefined, 5, fixture(name).url);
  return S.applyReport(t, t.loadId, fixture(name));
}

test('verified: headline, origin, manifest, no changes', () => {
  const m = model(tab('verified'));
  assert.equal(m.state, 'verified');
  assert.equal(m.headline, 'Verified');
  assert.equal(m.origin, 'https://news.example');
  assert.deepEqual(m.manifest, { version: 42, expires: '2026-12-04T00:00:00Z', kid: 'A1B2C3D4E5F60718' });
  assert.equal(m.changes.length, 0);
  assert.equal(m.failed.length, 0);
  assert.equal(m.proof, 'proven: the bytes are exactly what the origin signed');
  assert.equal(m.canSaveEvidence, true);
  assert.equal(m.icon, 'icons/verified-48.png');
});

test('modified: who, when, where, what, why for each of the 3 edits', () => {
  const m = model(tab('modified'));
  assert.equal(m.state, 'modified');
  assert.equal(m.summary, '3 changes by 1 middlebox');
  assert.match(m.proof, /^proven: undoing the listed changes/);
  assert.equal(m.changes.length, 1);
  const c = m.changes[0];
  assert.equal(c.hop, 1);
  assert.equal(c.who, 'Acme Privacy Gateway');
  assert.equal(c.kid, '0F1E2D3C4B5A6978');
  assert.equal(c.service, 'tracker-blocker');
  assert.equal(c.when, '2026-11-27T09:16:39Z');
  assert.equal(c.trusted, true);
  assert.equal(c.disclosureHref, 'https://gw.acme.example/.well-known/patient/disclosure.json');
  assert.equal(c.tls, 'upstream TLSv1.3 (TLS_AES_256_GCM_SHA384), certificate verified');
  assert.equal(c.edits.length, 3);
  const [a, b, d] = c.edits;
  assert.equal(a.where, 'line 9, column 5, byte 412');
  assert.equal(a.what, 'deleted 61 bytes');
  assert.equal(a.deletedText, '<script src="https://track.example/t.js" async></script>');
  assert.equal(a.insertedText, null);
  assert.equal(a.reason, 'tracker removed');
  assert.equal(a.reasonCode, 'tracker.removed');
  assert.equal(a.rule, 'easyprivacy:1732');
  assert.equal(a.note, 'third-party analytics script');
  assert.equal(b.where, 'line 31, column 9, byte 1290');
  assert.equal(d.what, 'inserted 52 bytes');
  assert.equal(d.insertedText, '<p class="acme">2 trackers removed by Acme</p>');
  assert.equal(d.reason, 'notice inserted');
  // the info result is a note, not a failed check
  assert.equal(m.failed.length, 0);
  assert.equal(m.results.length, 1);
  assert.equal(m.results[0].severity, 'info');
});

test('invalid: failed checks listed, untrusted hop flagged, weak TLS shown', () => {
  const m = model(tab('invalid'));
  assert.equal(m.state, 'invalid');
  assert.equal(m.headline, 'Do not trust this page');
  assert.equal(m.summary, '3 failed checks');
  assert.deepEqual(m.failed.map((r) => r.code), ['policy.middlebox.unknown', 'policy.reason.denied', 'body.mismatch']);
  assert.equal(m.failed[1].where, 'hop 1, edit 1');
  assert.equal(m.changes[0].trusted, false);
  assert.equal(m.changes[0].disclosureHref, null);
  assert.match(m.changes[0].tls, /TLSv1\.0.*NOT verified/);
  assert.match(m.changes[0].proof, /^attested/);
  assert.equal(m.results.length, 4);
  // a page-level "proven" means nothing on a page that failed: not shown
  assert.equal(model(S.applyReport(S.navigate(undefined, 1, 'https://a.example/'), 1, { ...fixture('invalid'), proof: 'proven' })).proof, null);
});

test('unverifiable and not covered read differently', () => {
  const u = model(tab('unverifiable'));
  assert.equal(u.state, 'unverifiable');
  assert.equal(u.headline, 'Could not verify');
  assert.equal(u.manifest, null);
  assert.equal(u.failed[0].code, 'fetch.failed');
  const n = model(tab('none'));
  assert.equal(n.state, 'none');
  assert.equal(n.headline, 'Not covered by patient');
  assert.equal(n.failed.length, 0);
});

test('pending, idle and error tabs', () => {
  const p = S.navigate(undefined, 1, 'https://a.example/');
  assert.equal(model(p).headline, 'Checking…');
  assert.equal(model(p).canSaveEvidence, false);
  assert.equal(model(S.initial(1)).state, 'idle');
  assert.equal(model(undefined).state, 'idle');
  const e = S.applyError(p, p.loadId, { code: 'host.missing', message: 'Specified native messaging host not found.' });
  const m = model(e);
  assert.equal(m.state, 'error');
  assert.deepEqual(m.error, { code: 'host.missing', message: 'Specified native messaging host not found.' });
  assert.equal(m.canSaveEvidence, false);
});

test('hostile strings stay plain text in the model', () => {
  const m = model(tab('hostile'));
  const e = m.changes[0].edits[0];
  assert.equal(e.note, '<img src=x onerror=alert(3)>');
  assert.equal(m.changes[0].who, "<script>alert('name')</script>");
  assert.equal(m.changes[0].disclosureHref, null, 'javascript: never becomes a link');
  assert.equal(m.changes[0].disclosure, 'javascript:alert(1)');
  // control characters are shown, not passed through
  assert.equal(e.deletedText, '<!-- \\u{0000}\\u{001b}[31m -->');
  assert.equal(m.results[0].severity, 'error', 'unknown severities count as errors');
});

test('wrong types from a broken host are dropped, not crashed on', () => {
  const rep = {
    patient: 1, type: 'report', verdict: 'modified', url: 42, origin: {}, manifest: { version: 'x', expires: 3, kid: null },
    changes: [null, { hop: -1, by: 'me', edits: [{ offset: '1', deleted: 1.5, inserted: 2, reason: {}, line: 3 }], tls: 'TLS' }, 'junk'],
    results: 'none',
  };
  const t = S.applyReport(S.navigate(undefined, 1, 'https://a.example/'), 1, rep);
  const m = model(t);
  assert.equal(m.url, '42');
  assert.equal(m.origin, null);
  assert.deepEqual(m.manifest, { version: null, expires: '3', kid: null });
  assert.equal(m.changes.length, 3);
  assert.equal(m.changes[1].hop, null);
  assert.equal(m.changes[1].who, 'unnamed middlebox');
  assert.equal(m.changes[1].tls, null);
  assert.equal(m.changes[1].edits[0].where, 'line 3');
  assert.equal(m.changes[1].edits[0].what, 'inserted 2 bytes');
  assert.equal(m.changes[1].edits[0].reason, 'no reason given');
  assert.deepEqual(m.results, []);
});

test('long excerpts are cut and edits per hop capped', () => {
  const long = 'x'.repeat(5000);
  assert.equal(text(long).length < MAX_TEXT + 40, true);
  assert.match(text(long), /… \(4700 more characters\)$/);
  const edits = Array.from({ length: MAX_EDITS + 5 }, (_, i) => ({ offset: i, deleted: 1, inserted: 0, reason: 'tracker.removed' }));
  const rep = { ...fixture('modified'), changes: [{ ...fixture('modified').changes[0], edits }] };
  const t = S.applyReport(S.navigate(undefined, 1, rep.url), 1, rep);
  const m = model(t);
  assert.equal(m.changes[0].edits.length, MAX_EDITS);
  assert.equal(m.changes[0].moreEdits, 5);
  assert.equal(m.summary, `${MAX_EDITS + 5} changes by 1 middlebox`);
});

test('bidi overrides and line separators are made visible', () => {
  assert.equal(text('a\u202eb\u2028c'), 'a\\u{202e}b\\u{2028}c');
  assert.equal(text('line1\nline2\tx'), 'line1\nline2\tx');
});

test('helpers: safeHref, reasonLabel, evidenceFileName', () => {
  assert.equal(safeHref('https://a.example/x'), 'https://a.example/x');
  assert.equal(safeHref('http://a.example/'), 'http://a.example/');
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'file:///etc', ' not a url', null, 7]) assert.equal(safeHref(bad), null);
  assert.equal(reasonLabel('malware.removed'), 'malware removed');
  assert.equal(reasonLabel('custom.thing'), 'custom.thing');
  assert.equal(evidenceFileName('https://news.example/a?b', '2026-11-27T09:16:40Z'), 'patient-evidence-news.example-2026-11-27T09_16_40Z.json');
  assert.equal(evidenceFileName('garbage', '../../etc/passwd'), 'patient-evidence-page-.._.._etc_passwd.json');
});

test('subresources appear in the model with their first problem', () => {
  let t = tab('verified');
  t = S.applyResource(t, t.loadId, 'https://news.example/app.js', { report: fixture('invalid') });
  t = S.applyResource(t, t.loadId, 'https://news.example/site.css', { error: { code: 'host.timeout', message: 'slow' } });
  const m = model(t);
  assert.equal(m.state, 'invalid');
  assert.equal(m.resources.length, 2);
  assert.equal(m.resources[0].url, 'https://news.example/app.js');
  assert.equal(m.resources[0].firstProblem.code, 'policy.middlebox.unknown');
  assert.equal(m.resources[1].state, 'error');
  assert.equal(m.resources[1].firstProblem.code, 'host.timeout');
});

test('the popup says which bytes the verdict is about', async () => {
  const { model, sourceText } = await import('../extension/render.js');
  const S = await import('../extension/state.js');
  const t = S.navigate(undefined, 1, 'https://a.example/');
  assert.equal(model(S.applyReport(t, 1, fixture('verified'), { source: 'received' })).source, 'the exact bytes your browser received');
  const r = model(S.applyReport(t, 1, fixture('verified'), { source: 'refetch', note: 'debugger off' }));
  assert.match(r.source, /^a copy the verifier fetched again, not necessarily the bytes your browser shows — debugger off$/);
  assert.equal(sourceText(t), null, 'nothing before a verdict');
  assert.equal(model(S.markBlocked(S.applyReport(t, 1, fixture('invalid'), { source: 'received' }), 1)).blocked, true);
});

test('who decrypted: the popup line for each interception outcome', () => {
  const tls = { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', verified: true };
  const rep = (status, by, t = tls) => ({ interception: { status, by, ca: null, anchor: 'sha256-x' }, changes: [{ tls: t }] });
  assert.equal(decryptionText(rep('allowed', 'corp-proxy')),
    'decrypted by corp-proxy, TLS 1.3 to the origin, certificate verified');
  assert.equal(decryptionText(rep('allowed', 'corp-proxy', { version: 'TLSv1.2', cipher: 'X', verified: false })),
    'decrypted by corp-proxy, TLS 1.2 to the origin, certificate NOT verified');
  assert.equal(decryptionText(rep('denied', 'corp-proxy')),
    'decrypted by corp-proxy, which your policy does not allow to decrypt, TLS 1.3 to the origin, certificate verified');
  assert.equal(decryptionText(rep('unknown', null)), 'intercepted by an unknown party');
  assert.equal(decryptionText(rep('none', null)), 'not intercepted: the connection ends at the origin');
  assert.equal(decryptionText({ interception: null }), null);
  assert.equal(decryptionText(rep('bogus', null)), null);
  const t = S.navigate(undefined, 5, fixture('modified').url);
  const m = model(S.applyReport(t, t.loadId, { ...fixture('modified'), interception: { status: 'allowed', by: 'corp-proxy' } }));
  assert.equal(m.decryption, 'decrypted by corp-proxy, TLS 1.3 to the origin, certificate verified');
});
