// background.js — the extension's service worker (an event page in Firefox).
//
// For every committed top-level navigation of an http(s) page it asks the
// native verifier to fetch and verify the same URL, keeps the per-tab state
// (state.js) in storage.session so it survives the worker being stopped, and
// paints the toolbar icon, badge and tooltip of that tab.  When the user turned
// on "also check scripts and styles" (options page, which requests the extra
// permissions at that moment), it lists the page's script and stylesheet URLs
// after load and verifies each of them too.

import { api } from './compat.js';
import * as S from './state.js';
import { call } from './native.js';

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

async function verifyMain(tabId, loadId, url) {
  const out = await call(api, 'verify', url);
  await update(tabId, (ts) => (out.report ? S.applyReport(ts, loadId, out.report) : S.applyError(ts, loadId, out.error)));
}

async function options() {
  const o = await api.storage.local.get({ subresources: false });
  return o;
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
  update(d.tabId, (ts) => S.navigate(ts, d.tabId, d.url)).then((ts) => {
    if (ts.state === 'pending') verifyMain(d.tabId, ts.loadId, ts.url);
  });
});

api.webNavigation.onCompleted.addListener((d) => {
  if (d.frameId !== 0 || d.tabId < 0 || !S.isWebUrl(d.url)) return;
  load(d.tabId).then((ts) => {
    if (ts.url === d.url) verifySubresources(d.tabId, ts.loadId, d.url);
  });
});

// Chromium resets a tab's action settings on some navigations (same-document
// ones keep the page, so repaint what we have).
api.webNavigation.onHistoryStateUpdated.addListener((d) => {
  if (d.frameId === 0) load(d.tabId).then(paint);
});

api.tabs.onRemoved.addListener((tabId) => {
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
    load(msg.tabId).then(async (ts) => reply(await call(api, 'bundle', ts.url)));
    return true;
  }
  return false;
});
