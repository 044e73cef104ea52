// render.js — turn a tab state (state.js) and its verifier report into a
// plain, DOM-free view model for the popup.
//
// Pure: no browser APIs.  Every string in the model is plain text that came
// from (or was derived from) the report; the popup must put it into the page
// with textContent only (view.js does), never as HTML.  Report fields are
// untrusted input here (a broken or hostile host, or a hostile page's text in
// an excerpt): wrong types become absent, long strings are cut, control
// characters are shown as escapes, and only http(s) URLs ever become links.

import { effectiveState, STATE_STYLE } from './state.js';

export const MAX_TEXT = 300; // characters of one excerpt / note shown
export const MAX_EDITS = 200; // edits listed per hop (the rest are counted)
export const MAX_HOPS = 32;
export const MAX_RESULTS = 100;

const HEADLINES = {
  idle: ['Not checked', 'patient checks web pages (http and https) only.'],
  pending: ['Checking…', 'The verifier is fetching and checking this page.'],
  verified: ['Verified', 'This page is exactly what its origin signed. Nobody changed it on the way.'],
  modified: ['Modified by middleboxes you trust', 'This page was changed on the way, only by middleboxes your policy trusts, and every change is signed. The changes are listed below.'],
  invalid: ['Do not trust this page', 'This page was tampered with, or a signature or policy check failed. See the failed checks below.'],
  unverifiable: ['Could not verify', 'The verifier could not check this page (see why below). It may be fine, or not.'],
  none: ['Not covered by patient', 'This site publishes no patient manifest, or your trust policy names no publisher key for it, so there is nothing to check against.'],
  error: ['Verifier not working', 'The extension could not run the patient verifier.'],
};

const REASONS = {
  'tracker.removed': 'tracker removed',
  'ad.removed': 'advertisement removed',
  'ad.inserted': 'advertisement inserted',
  'malware.removed': 'malware removed',
  'notice.inserted': 'notice inserted',
  'content.filtered': 'content filtered',
  'content.rewritten': 'content rewritten',
  'header.changed': 'header changed',
};

// Text from the report: strings only, control characters made visible (a
// terminal escape or NUL in an excerpt must not vanish), cut to `max`.
export function text(v, max = MAX_TEXT) {
  if (typeof v === 'number' && Number.isFinite(v)) v = String(v);
  if (typeof v !== 'string') return null;
  let s = v.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u{${c.codePointAt(0).toString(16).padStart(4, '0')}}`);
  if (s.length > max) s = `${s.slice(0, max)}… (${s.length - max} more characters)`;
  return s;
}

function int(v) {
  return Number.isSafeInteger(v) && v >= 0 ? v : null;
}

export function safeHref(v) {
  if (typeof v !== 'string' || v.length > 2048) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

export function reasonLabel(code) {
  const c = text(code, 80);
  if (!c) return 'no reason given';
  return REASONS[c] || c;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function where(e) {
  const parts = [];
  const line = int(e.line), col = int(e.column), off = int(e.offset);
  if (line !== null) parts.push(col !== null ? `line ${line}, column ${col}` : `line ${line}`);
  if (off !== null) parts.push(`byte ${off}`);
  return parts.join(', ') || 'position not given';
}

function what(e) {
  const del = int(e.deleted) ?? 0, ins = int(e.inserted) ?? 0;
  if (del && ins) return `replaced ${plural(del, 'byte')} with ${plural(ins, 'byte')}`;
  if (del) return `deleted ${plural(del, 'byte')}`;
  if (ins) return `inserted ${plural(ins, 'byte')}`;
  return 'no bytes changed';
}

function proofText(p) {
  if (p === 'proven') return 'proven: the verifier undid the change and recovered the signed original';
  if (p === 'attested') return 'attested: signed by the middlebox, but the removed bytes were withheld, so not checked byte for byte';
  if (p === 'none') return 'not proven';
  return text(p, 40);
}

// The report-level proof, worded for the page; only meaningful when it passed.
function pageProofText(state, p) {
  if (state === 'verified' && p === 'proven') return 'proven: the bytes are exactly what the origin signed';
  if (state === 'modified' && p === 'proven') return 'proven: undoing the listed changes gives back exactly the signed bytes';
  if ((state === 'verified' || state === 'modified') && p === 'attested')
    return 'attested: every change is signed, but some removed bytes were withheld, so not all were checked byte for byte';
  return null;
}

function tlsText(t) {
  if (!t || typeof t !== 'object') return null;
  const v = text(t.version, 40) || 'unknown TLS';
  const c = text(t.cipher, 80);
  const ok = t.verified === true ? 'certificate verified' : 'certificate NOT verified';
  return `upstream ${v}${c ? ` (${c})` : ''}, ${ok}`;
}

// "TLSv1.3" -> "TLS 1.3" for people.
function tlsVersion(v) {
  const s = text(v, 40);
  return s ? s.replace(/^TLSv/, 'TLS ') : null;
}

// Who decrypted the page's TLS (report "interception"), with the upstream
// TLS the decrypting hop (the last one, next to the browser) signed:
// "decrypted by corp-proxy, TLS 1.3 to the origin, certificate verified".
export function decryptionText(rep) {
  const i = rep && rep.interception && typeof rep.interception === 'object' ? rep.interception : null;
  if (!i) return null;
  const by = text(i.by, 120) || 'a middlebox';
  const hops = Array.isArray(rep.changes) ? rep.changes : [];
  const t = hops.length && hops[hops.length - 1] && typeof hops[hops.length - 1].tls === 'object'
    ? hops[hops.length - 1].tls : null;
  const up = t
    ? (t.version === 'none' ? ', plain HTTP to the origin'
      : `, ${tlsVersion(t.version) || 'unknown TLS'} to the origin, certificate ${t.verified === true ? 'verified' : 'NOT verified'}`)
    : '';
  switch (i.status) {
    case 'none': return 'not intercepted: the connection ends at the origin';
    case 'allowed': return `decrypted by ${by}${up}`;
    case 'denied': return `decrypted by ${by}, which your policy does not allow to decrypt${up}`;
    case 'unknown': return 'intercepted by an unknown party';
    case 'unchecked': return 'not known whether intercepted (the origin announces no TLS keys)';
    default: return null;
  }
}

function edit(e, i) {
  e = e && typeof e === 'object' ? e : {};
  return {
    index: i + 1,
    where: where(e),
    what: what(e),
    offset: int(e.offset),
    deleted: int(e.deleted),
    inserted: int(e.inserted),
    deletedText: text(e.deleted_text),
    insertedText: text(e.inserted_text),
    reason: reasonLabel(e.reason),
    reasonCode: text(e.reason, 80),
    rule: text(e.rule, 120),
    note: text(e.note),
  };
}

function change(c) {
  c = c && typeof c === 'object' ? c : {};
  const by = c.by && typeof c.by === 'object' ? c.by : {};
  const edits = Array.isArray(c.edits) ? c.edits : [];
  const shown = edits.slice(0, MAX_EDITS).map(edit);
  return {
    hop: int(c.hop),
    who: text(by.name, 120) || 'unnamed middlebox',
    kid: text(by.kid, 40),
    service: text(by.service, 80),
    disclosure: text(by.disclosure, 300),
    disclosureHref: safeHref(by.disclosure),
    when: text(c.at, 40),
    proof: proofText(c.proof),
    trusted: c.trusted === true,
    tls: tlsText(c.tls),
    edits: shown,
    moreEdits: edits.length - shown.length,
  };
}

function result(r) {
  r = r && typeof r === 'object' ? r : {};
  const sev = ['error', 'warning', 'info'].includes(r.severity) ? r.severity : 'error';
  return {
    code: text(r.code, 80) || 'unknown',
    severity: sev,
    where: text(r.where, 120),
    explanation: text(r.explanation, 600),
  };
}

function resourceRows(ts) {
  return Object.entries(ts.resources || {}).map(([url, r]) => ({
    url: text(url, 300),
    state: r.state,
    label: HEADLINES[r.state] ? HEADLINES[r.state][0] : r.state,
    changes: r.report && Array.isArray(r.report.changes) ? r.report.changes.length : 0,
    firstProblem: r.report && Array.isArray(r.report.results)
      ? (r.report.results.map(result).find((x) => x.severity === 'error') || null)
      : (r.error ? { code: text(r.error.code, 80), severity: 'error', where: null, explanation: text(r.error.message, 600) } : null),
  }));
}

// What the verdict is about, in words (state.js `source`).
export function sourceText(ts) {
  if (!ts || !ts.source) return null;
  if (ts.source === 'received') return 'the exact bytes your browser received';
  const why = text(ts.sourceNote, 300);
  return `a copy the verifier fetched again, not necessarily the bytes your browser shows${why ? ` — ${why}` : ''}`;
}

// model(tabState) -> everything the popup shows, as plain data.
export function model(ts) {
  const state = effectiveState(ts);
  const [headline, explanation] = HEADLINES[state] || HEADLINES.error;
  const rep = ts && ts.report && typeof ts.report === 'object' ? ts.report : null;
  const changes = rep && Array.isArray(rep.changes) ? rep.changes.slice(0, MAX_HOPS).map(change) : [];
  const results = rep && Array.isArray(rep.results) ? rep.results.slice(0, MAX_RESULTS).map(result) : [];
  const nEdits = changes.reduce((n, c) => n + c.edits.length + c.moreEdits, 0);
  const m = rep && rep.manifest && typeof rep.manifest === 'object' ? rep.manifest : null;
  let summary = null;
  if (state === 'modified' && changes.length)
    summary = `${plural(nEdits, 'change')} by ${plural(changes.length, 'middlebox', 'middleboxes')}`;
  else if (state === 'invalid')
    summary = `${plural(results.filter((r) => r.severity === 'error').length, 'failed check')}`;
  return {
    state,
    color: (STATE_STYLE[state] || STATE_STYLE.error).color,
    icon: `icons/${state in STATE_STYLE ? state : 'error'}-48.png`,
    headline,
    explanation,
    summary,
    url: text((rep && rep.url) || (ts && ts.url), 500),
    origin: text(rep && rep.origin, 200),
    checkedAt: text(rep && rep.checked_at, 40),
    manifest: m ? { version: int(m.version), expires: text(m.expires, 40), kid: text(m.kid, 40) } : null,
    proof: rep ? pageProofText(state, rep.proof) : null,
    decryption: decryptionText(rep),
    decryptionBad: !!(rep && rep.interception && ['denied', 'unknown'].includes(rep.interception.status)),
    source: sourceText(ts),
    received: !!(ts && ts.source === 'received'),
    blocked: !!(ts && ts.blocked),
    changes,
    results,
    failed: results.filter((r) => r.severity === 'error'),
    resources: ts ? resourceRows(ts) : [],
    error: ts && ts.error ? { code: text(ts.error.code, 80), message: text(ts.error.message, 600) } : null,
    // Evidence exists once the verifier looked at the page.
    canSaveEvidence: !!(rep && ts && /^https?:/i.test(ts.url || '')),
  };
}

// A file name for a saved evidence bundle: origin host + time, safe characters only.
export function evidenceFileName(url, checkedAt) {
  let host = 'page';
  try {
    host = new URL(url).hostname || host;
  } catch { /* keep default */ }
  const t = typeof checkedAt === 'string' ? checkedAt : '';
  const name = `patient-evidence-${host}-${t}`.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
  return `${name}.json`;
}
