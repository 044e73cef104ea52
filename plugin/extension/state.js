// state.js — the per-tab state machine of the patient extension.
//
// Pure: no browser APIs, no clock, no I/O.  Every function takes the previous
// tab state (a plain JSON-serialisable object, so it can live in
// storage.session across service-worker restarts) and returns a new one; the
// input is never mutated.  The service worker owns the side effects.
//
// A tab state:
//   { tabId, loadId, url, state, report, error, resources: {URL: entry}, checks }
//   loadId     increases with every top-level navigation of the tab; results
//              carry the loadId they were requested for, so a late answer for
//              the previous page is dropped instead of painting the new one.
//   state      the main document's state (one of STATES).
//   report     the verifier's JSON report for the main document, or null.
//   error      {code, message} when the verifier could not run, or null.
//   resources  the page's scripts and styles, when that option is on:
//              URL -> {state, report, error}.
//   checks     how many results arrived for this load (for the popup).
//   source     what the main document's verdict is about: 'received' (the
//              exact bytes this browser received: Firefox's StreamFilter, or
//              Chromium's debugger when opted in) or 'refetch' (a copy the
//              verifier fetched again), or null before any result.
//   sourceNote why the exact bytes were not available, when 'refetch'.
//   blocked    enforce mode replaced this page by the interstitial.
//
// Rule: within one page load, `invalid` is never replaced by a later, weaker
// result (a re-check that says verified, an error, an unverifiable fetch).  Only
// a new navigation (navigate()) starts from scratch.

export const STATES = Object.freeze([
  'idle', // not a web page, or nothing checked yet
  'pending', // asked the verifier, no answer yet
  'verified', // the origin's bytes, untouched
  'modified', // changed only by middleboxes the policy trusts, every change signed
  'invalid', // tampered, forged, unauthorised, expired, rolled back
  'unverifiable', // could not be checked (network, unknown origin, ...)
  'none', // the site does not use patient (no manifest)
  'error', // the verifier itself is missing or failed
]);

// Result codes by which the verifier says "patient does not cover this site":
// it publishes no manifest, or the trust policy names no publisher for it (the
// verifier checks the policy first).  An `unverifiable` report carrying one of
// them is shown as "not covered" (grey) rather than "could not check" (amber),
// so that the many sites outside patient do not look alarming.
export const NOT_COVERED_CODES = Object.freeze([
  'manifest.missing',
  'policy.publisher.unknown',
  'manifest.not_found',
  'manifest.absent',
]);

export const ICON_SIZES = Object.freeze([16, 32, 48, 128]);

// Badge text (at most 4 characters), colour, icon glyph and tooltip per state.
export const STATE_STYLE = Object.freeze({
  idle: { color: '#9aa0a6', badge: '', glyph: 'ring', title: 'patient: not checked' },
  pending: { color: '#80868b', badge: '…', glyph: 'dots', title: 'patient: checking…' },
  verified: { color: '#188038', badge: 'OK', glyph: 'check', title: 'patient: verified — exactly what the origin signed' },
  modified: { color: '#1a73e8', badge: 'MOD', glyph: 'delta', title: 'patient: modified by middleboxes you trust' },
  invalid: { color: '#d93025', badge: 'BAD', glyph: 'cross', title: 'patient: INVALID — tampered or failed a check' },
  unverifiable: { color: '#e37400', badge: '?', glyph: 'question', title: 'patient: could not be verified' },
  none: { color: '#9aa0a6', badge: '', glyph: 'dash', title: 'patient: this site does not use patient' },
  error: { color: '#9334e6', badge: 'ERR', glyph: 'bang', title: 'patient: the verifier failed' },
});

const MAX_RESOURCES = 64;

export function isWebUrl(url) {
  return typeof url === 'string' && /^https?:\/\//i.test(url);
}

export function initial(tabId) {
  return {
    tabId,
    loadId: 0,
    url: null,
    state: 'idle',
    report: null,
    error: null,
    resources: {},
    checks: 0,
    source: null,
    sourceNote: null,
    blocked: false,
  };
}

// A top-level navigation committed: forget everything about the previous page.
export function navigate(prev, tabId, url) {
  const base = prev || initial(tabId);
  return {
    ...initial(tabId),
    loadId: (base.loadId || 0) + 1,
    url: typeof url === 'string' ? url : null,
    state: isWebUrl(url) ? 'pending' : 'idle',
  };
}

// Map a verifier report to a state.
export function verdictState(report) {
  if (!report || typeof report !== 'object') return 'error';
  switch (report.verdict) {
    case 'verified':
    case 'modified':
    case 'invalid':
      return report.verdict;
    case 'unverifiable': {
      const results = Array.isArray(report.results) ? report.results : [];
      const notCovered = results.some((r) => r && NOT_COVERED_CODES.includes(r.code));
      return notCovered ? 'none' : 'unverifiable';
    }
    default:
      return 'error';
  }
}

function sameLoad(prev, loadId) {
  return prev && prev.loadId === loadId && prev.state !== 'idle';
}

export const SOURCES = Object.freeze(['received', 'refetch']);

// Apply an outcome for the main document: {report} or {error}.  `via` is
// {source, note}: which bytes the verdict is about (see `source` above).
function settle(prev, loadId, report, error, via) {
  if (!sameLoad(prev, loadId)) return prev; // stale answer: drop it
  const next = { ...prev, checks: (prev.checks || 0) + 1 };
  if (prev.state === 'invalid') return next; // never downgraded (nor what it was about)
  const source = via && SOURCES.includes(via.source) ? via.source : 'refetch';
  const sourceNote = source === 'refetch' && via && typeof via.note === 'string' ? via.note : null;
  if (error) return { ...next, state: 'error', error, report: null, source, sourceNote };
  return { ...next, state: verdictState(report), report, error: null, source, sourceNote };
}

export function applyReport(prev, loadId, report, via) {
  return settle(prev, loadId, report, null, via);
}

export function applyError(prev, loadId, error, via) {
  const e = {
    code: (error && typeof error.code === 'string' && error.code) || 'host.failed',
    message: (error && typeof error.message === 'string' && error.message) || 'the verifier failed',
  };
  return settle(prev, loadId, null, e, via);
}

// applyOutcome(prev, loadId, {report}|{error}, via): either of the above.
export function applyOutcome(prev, loadId, out, via) {
  return out && out.report ? applyReport(prev, loadId, out.report, via) : applyError(prev, loadId, out && out.error, via);
}

// Enforce mode: what to do with a held document once its verdict is in.
// Only a page the verifier found `invalid` is stopped; a verifier that is
// missing, slow or cannot check lets the page through (and says so on the
// badge): enforce must not turn every broken install into a blank web.
export function enforceAction(out) {
  return out && out.report && verdictState(out.report) === 'invalid' ? 'block' : 'release';
}

// The held document was replaced by the interstitial.
export function markBlocked(prev, loadId) {
  if (!sameLoad(prev, loadId)) return prev;
  return { ...prev, blocked: true };
}

// A result for one of the page's scripts or styles.
export function applyResource(prev, loadId, url, outcome) {
  if (!sameLoad(prev, loadId) || typeof url !== 'string') return prev;
  const resources = { ...(prev.resources || {}) };
  const old = resources[url];
  if (!old && Object.keys(resources).length >= MAX_RESOURCES) return prev;
  let entry;
  if (old && old.state === 'invalid') entry = old; // never downgraded either
  else if (outcome && outcome.report) entry = { state: verdictState(outcome.report), report: outcome.report, error: null };
  else entry = { state: 'error', report: null, error: (outcome && outcome.error) || { code: 'host.failed', message: 'the verifier failed' } };
  resources[url] = entry;
  return { ...prev, resources };
}

// What the toolbar shows: the main document's state, made worse by any
// subresource that is invalid (the whole page is then invalid) or modified
// (a verified page with a modified script is modified).
export function effectiveState(ts) {
  if (!ts) return 'idle';
  const subs = Object.values(ts.resources || {}).map((r) => r.state);
  if (ts.state === 'invalid' || subs.includes('invalid')) return 'invalid';
  if (ts.state === 'verified' && subs.includes('modified')) return 'modified';
  return ts.state;
}

export function badge(state) {
  const s = STATE_STYLE[state] || STATE_STYLE.error;
  const path = {};
  for (const size of ICON_SIZES) path[size] = `icons/${state in STATE_STYLE ? state : 'error'}-${size}.png`;
  return { text: s.badge, color: s.color, title: s.title, path };
}
