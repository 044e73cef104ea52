// background.js — the extension's service worker (an event page in Firefox).
//
// For every committed top-level navigation of an http(s) page it asks the
// native verifier to verify it, keeps the per-tab state (state.js) in
// storage.session so it survives the worker being stopped, and paints the
// toolbar icon, badge and tooltip of that tab.
//
// Which bytes are verified:
//   Firefox: the exact bytes the browser received (capture.js, StreamFilter),
//     with the response's status and Patient-* headers; a page the filter did
//     not see (served from the cache without a request, restored from the
//     back-forward cache) is re-fetched by the verifier instead, and the
//     popup says so.  With *enforce*, the document is held until its verdict
//     and an invalid one is replaced by the interstitial (interstitial.html).
//   Chromium: the verifier fetches the URL again, unless the user opted in to
//     exact bytes through the debugger (debugger.js; the browser then shows
//     its "started debugging this browser" bar).
// With "also check scripts and styles" on, the page's scripts and style
// sheets are verified too: captured as they load in Firefox, listed after
// load and re-fetched in Chromium.

import { api } from './compat.js';
import * as S from './state.js';
import { call, TIMEOUT_MS } from './native.js';
import { capture, placeholder, tlsChain } from './capture.js';
import * as D from './debugger.js';

const MAX_SUBRESOURCES = 32;
const key = (tabId) => `tab:${tabId}`;

// One queue per tab: state updates are read-modify-write on storage, and
// answers can arrive in any order.
const queues = new Map();
function serial(tabId, fn) {
  const prev = queues.get(tabId) || Promise.resolve();
  const next = prev.then(fn, fn).finally(() => {
    if (queues.get(tabId) === next) queues.delete(tabId);
  });
  queues.set(tabId, next);
  return next;
}

async function load(tabId) {
  const o = await api.storage.session.get(key(tabId));
  return o[key(tabId)] || S.initial(tabId);
}

// The tab's state once every update queued before this call is stored (a
// page's load end or its first script can overtake its commit's update).
function settled(tabId) {
  return serial(tabId, () => load(tabId));
}

async function paint(ts) {
  const b = S.badge(S.effectiveState(ts));
  const tabId = ts.tabId;
  try {
    await Promise.all([
      api.action.setIcon({ tabId, path: b.path }),
      api.action.setBadgeText({ tabId, text: b.text }),
      api.action.setBadgeBackgroundColor({ tabId, color: b.color }),
      api.action.setTitle({ tabId, title: b.title }),
      api.action.setBadgeTextColor ? api.action.setBadgeTextColor({ tabId, color: '#ffffff' }) : null,
    ]);
  } catch {
    // the tab went away meanwhile
  }
}

function update(tabId, fn) {
  return serial(tabId, async () => {
    const prev = await load(tabId);
    const next = fn(prev);
    if (next !== prev) await api.storage.session.set({ [key(tabId)]: next });
    await paint(next);
    return next;
  });
}

// Firefox: StreamFilter gives the bytes; Chromium: only its debugger does.
const FIREFOX = typeof (api.webRequest && api.webRequest.filterResponseData) === 'function';
const INTERSTITIAL = api.runtime.getURL('interstitial.html');
const noFragment = (u) => (typeof u === 'string' ? u.split('#')[0] : u);

// The last bytes received for each tab's document, so that "Check again" and
// "Save evidence" are about the same bytes as the verdict (in memory only:
// when the event page is stopped they are gone, and the verifier re-fetches).
const lastReceived = new Map(); // tabId -> {url, received}

async function verifyMain(tabId, loadId, url, note) {
  const kept = lastReceived.get(tabId);
  let out, via;
  if (kept && kept.url === noFragment(url)) {
    out = await call(api, 'verify', kept.url, TIMEOUT_MS, kept.received);
    via = { source: 'received' };
  } else {
    out = await call(api, 'verify', url);
    via = { source: 'refetch', note };
  }
  await update(tabId, (ts) => S.applyOutcome(ts, loadId, out, via));
}

const DEFAULTS = { subresources: false, enforce: false, exactChromium: false };
async function options() {
  return api.storage.local.get(DEFAULTS);
}

// The verdict on captured bytes: {out, via}.  What the filter could not see
// whole is re-fetched, and the popup says why; a body over the cap is an error
// of its own (the verifier would refuse the re-fetch for the same reason).
async function verdictOf(c, res) {
  // A redirect restarts the request under the same id with a new capture:
  // the old one has nothing to verify.
  if (c.superseded) return { out: { error: { code: 'request.redirected', message: 'redirected' } }, via: { source: 'refetch' } };
  if (res.received) {
    return { out: await call(api, 'verify', c.url, TIMEOUT_MS, res.received), via: { source: 'received' }, received: res.received };
  }
  if (res.tooLarge) return { out: { error: { code: 'body.too_large', message: res.unavailable } }, via: { source: 'received' } };
  return { out: await call(api, 'verify', c.url), via: { source: 'refetch', note: res.unavailable } };
}

// ---- Firefox: capture what the browser receives ------------------------------------

const byRequest = new Map(); // requestId -> capture
const mainByTab = new Map(); // tabId -> the capture of its latest top-level request
const bypass = new Map(); // tabId -> URL the user chose to "show anyway" (once)
const resCount = new Map(); // `${tabId}:${loadId}` -> scripts/styles captured

function forget(c) {
  if (byRequest.get(c.requestId) === c) byRequest.delete(c.requestId);
}

async function onBeforeRequest(d) {
  if (d.tabId < 0 || !S.isWebUrl(d.url)) return {};
  const o = await options();
  if (d.type === 'main_frame') {
    const skip = bypass.get(d.tabId) === noFragment(d.url);
    if (skip) bypass.delete(d.tabId);
    const old = byRequest.get(d.requestId);
    if (old) old.superseded = true;
    const c = capture(api, d, { hold: o.enforce && !skip });
    byRequest.set(d.requestId, c);
    mainByTab.set(d.tabId, c);
    lastReceived.delete(d.tabId);
    c.verdict = c.done.then((res) => verdictOf(c, res));
    c.verdict.then((v) => {
      forget(c);
      if (!c.hold) return;
      if (S.enforceAction(v.out) === 'block') {
        c.blocked = true;
        const r = v.out.report.results || [];
        const first = r.find((x) => x && x.severity === 'error') || r[0] || {};
        c.block(placeholder(c.url, first.code || 'invalid'));
      } else {
        c.release();
      }
    });
    return {};
  }
  if (!o.subresources) return {};
  const ts = await settled(d.tabId);
  if (!ts.url || noFragment(ts.url) !== noFragment(d.documentUrl)) return {};
  const k = `${d.tabId}:${ts.loadId}`;
  const n = resCount.get(k) || 0;
  if (n >= MAX_SUBRESOURCES) return {};
  resCount.set(k, n + 1);
  const c = capture(api, d);
  byRequest.set(d.requestId, c);
  c.done.then(async (res) => {
    forget(c);
    const { out } = await verdictOf(c, res);
    await update(d.tabId, (t) => S.applyResource(t, ts.loadId, c.url, out));
  });
  return {};
}

if (FIREFOX) {
  const filter = { urls: ['http://*/*', 'https://*/*'], types: ['main_frame', 'script', 'stylesheet'] };
  api.webRequest.onBeforeRequest.addListener(onBeforeRequest, filter, ['blocking']);
  // blocking: Firefox gives the certificate chain only from inside a
  // blocking listener; the chain is read before the body may finish
  api.webRequest.onHeadersReceived.addListener(async (d) => {
    const c = byRequest.get(d.requestId);
    if (c) c.headers(d, await tlsChain(api, d));
    return {};
  }, filter, ['blocking', 'responseHeaders']);
  api.webRequest.onErrorOccurred.addListener((d) => byRequest.delete(d.requestId), filter);
}

// A committed document: find the bytes captured for it (Firefox, or Chromium
// through the debugger), else have the verifier fetch it again.
async function verifyCommitted(tabId, ts) {
  const c = FIREFOX ? mainByTab.get(tabId) : D.takeCaptured(tabId, ts.url);
  if (c && noFragment(c.url) === noFragment(ts.url)) {
    mainByTab.delete(tabId);
    const v = await c.verdict;
    if (v.received) lastReceived.set(tabId, { url: noFragment(c.url), received: v.received });
    await update(tabId, (t) => S.applyOutcome(t, ts.loadId, v.out, v.via));
    if (c.blocked) {
      await update(tabId, (t) => S.markBlocked(t, ts.loadId));
      // loadReplace: "back" from the interstitial leaves the blocked page
      const props = { url: `${INTERSTITIAL}?tab=${tabId}` };
      if (FIREFOX) props.loadReplace = true;
      await api.tabs.update(tabId, props).catch(() => {});
    }
    return;
  }
  let note;
  if (FIREFOX) note = 'Firefox saw no network response for this page (it came from a cache), so the verifier fetched it again.';
  else note = (await options()).exactChromium
    ? 'The debugger was not attached to this tab when the page loaded, so the verifier fetched it again.'
    : 'Chromium gives extensions the received bytes only through its debugger (off: see Options), so the verifier fetched the page again.';
  await verifyMain(tabId, ts.loadId, ts.url, note);
}

// Runs in the page (isolated world): the URLs of its scripts and stylesheets.
function listSubresources() {
  const urls = [];
  for (const s of document.scripts) if (s.src) urls.push(s.src);
  for (const l of document.querySelectorAll('link[rel~="stylesheet"][href]')) urls.push(l.href);
  return urls;
}

function originPattern(url) {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}/*`;
}

async function verifySubresources(tabId, loadId, pageUrl) {
  const { subresources } = await options();
  if (!subresources || !api.scripting) return;
  const granted = await api.permissions.contains({ permissions: ['scripting'], origins: [originPattern(pageUrl)] });
  if (!granted) return;
  let urls = [];
  try {
    const [res] = await api.scripting.executeScript({ target: { tabId }, func: listSubresources });
    urls = Array.isArray(res && res.result) ? res.result : [];
  } catch {
    return;
  }
  urls = [...new Set(urls.filter(S.isWebUrl))].slice(0, MAX_SUBRESOURCES);
  for (const u of urls) {
    const cur = await load(tabId);
    if (cur.loadId !== loadId) return; // navigated away: stop
    const out = await call(api, 'verify', u);
    await update(tabId, (ts) => S.applyResource(ts, loadId, u, out));
  }
}

api.webNavigation.onCommitted.addListener((d) => {
  if (d.frameId !== 0 || d.tabId < 0) return;
  // The interstitial stands in for the blocked page: keep its verdict.
  if (d.url.startsWith(INTERSTITIAL)) {
    load(d.tabId).then(paint);
    return;
  }
  update(d.tabId, (ts) => S.navigate(ts, d.tabId, d.url)).then((ts) => {
    if (ts.state === 'pending') verifyCommitted(d.tabId, ts);
  });
});

api.webNavigation.onCompleted.addListener((d) => {
  if (FIREFOX || d.frameId !== 0 || d.tabId < 0 || !S.isWebUrl(d.url)) return;
  settled(d.tabId).then((ts) => {
    if (ts.url === d.url) verifySubresources(d.tabId, ts.loadId, d.url);
  });
});

// Chromium resets a tab's action settings on some navigations (same-document
// ones keep the page, so repaint what we have); Firefox once the interstitial
// has loaded in place of the blocked page.
api.webNavigation.onHistoryStateUpdated.addListener((d) => {
  if (d.frameId === 0) load(d.tabId).then(paint);
});
api.webNavigation.onCompleted.addListener((d) => {
  if (d.frameId === 0 && d.url.startsWith(INTERSTITIAL)) load(d.tabId).then(paint);
});

api.tabs.onRemoved.addListener((tabId) => {
  lastReceived.delete(tabId);
  mainByTab.delete(tabId);
  bypass.delete(tabId);
  serial(tabId, () => api.storage.session.remove(key(tabId)));
});

// Messages from the popup: check the page again (same load: an invalid
// verdict stays invalid), or ask the host for an evidence bundle.
api.runtime.onMessage.addListener((msg, sender, reply) => {
  if (!msg || typeof msg !== 'object' || sender.id !== api.runtime.id) return false;
  if (msg.type === 'recheck' && Number.isInteger(msg.tabId)) {
    load(msg.tabId).then(async (ts) => {
      if (!S.isWebUrl(ts.url)) return reply({ ok: false });
      await verifyMain(msg.tabId, ts.loadId, ts.url);
      reply({ ok: true });
    });
    return true;
  }
  if (msg.type === 'bundle' && Number.isInteger(msg.tabId)) {
    load(msg.tabId).then(async (ts) => {
      const kept = lastReceived.get(msg.tabId);
      const same = kept && kept.url === noFragment(ts.url);
      reply(await call(api, 'bundle', same ? kept.url : ts.url, TIMEOUT_MS, same ? kept.received : null));
    });
    return true;
  }
  // The interstitial's "Show anyway": load the page once more, not held.
  if (msg.type === 'showAnyway' && Number.isInteger(msg.tabId)) {
    load(msg.tabId).then(async (ts) => {
      if (!S.isWebUrl(ts.url) || !ts.blocked) return reply({ ok: false });
      bypass.set(msg.tabId, noFragment(ts.url));
      await api.tabs.update(msg.tabId, { url: ts.url });
      reply({ ok: true });
    });
    return true;
  }
  return false;
});

// Chromium, opted in: the debugger hands over each document's bytes.
if (!FIREFOX) {
  D.setup(api, (tabId, url, received) => verdictOf({ url }, { received }),
    async () => !!api.debugger && (await options()).exactChromium);
}
