// debugger.js — the bytes the browser received, in Chromium (opt-in).
//
// Chromium gives an extension a response body only through chrome.debugger.
// With the option on, the extension attaches to every tab and enables the
// DevTools protocol's Fetch domain at the Response stage for documents: each
// top-level document response pauses, Fetch.getResponseBody returns its bytes
// exactly as received (decoded, never re-encoded: the Network domain's
// getResponseBody re-encodes text and is not used), and the response goes on
// unchanged.  The price: Chromium shows "started debugging this browser" while
// attached, and the install asks for the "debugger" permission.  Off, or on a
// tab it could not attach to, the verifier fetches the page again.

const PATTERNS = [{ urlPattern: '*', resourceType: 'Document', requestStage: 'Response' }];

const attached = new Map(); // tabId -> root frame id
const captured = new Map(); // tabId -> {url, verdict}
let onBody = null;

// The capture made for this tab's latest document, once (background.js).
export function takeCaptured(tabId) {
  const c = captured.get(tabId) || null;
  captured.delete(tabId);
  return c;
}

export function isAttached(tabId) {
  return attached.has(tabId);
}

function b64bytes(s) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(s);
  const bin = atob(s);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

export async function attach(api, tabId) {
  if (attached.has(tabId)) return true;
  const t = { tabId };
  try {
    await api.debugger.attach(t, '1.3');
  } catch {
    return false; // another debugger, or a page extensions may not touch
  }
  try {
    const tree = await api.debugger.sendCommand(t, 'Page.getFrameTree');
    attached.set(tabId, tree && tree.frameTree && tree.frameTree.frame ? tree.frameTree.frame.id : null);
    await api.debugger.sendCommand(t, 'Fetch.enable', { patterns: PATTERNS });
    await api.storage.session.set({ [`debugger:${tabId}`]: true });
    return true;
  } catch {
    attached.delete(tabId);
    await api.debugger.detach(t).catch(() => {});
    return false;
  }
}

export async function detachAll(api) {
  for (const tabId of [...attached.keys()]) {
    attached.delete(tabId);
    await api.debugger.detach({ tabId }).catch(() => {});
    await api.storage.session.remove(`debugger:${tabId}`);
  }
}

async function paused(api, tabId, p) {
  const t = { tabId };
  const root = attached.get(tabId);
  const status = p.responseStatusCode;
  const main = root === null || root === undefined || p.frameId === root;
  // Redirects and errors have no body worth verifying; iframes are not the page.
  if (main && status >= 200 && status < 300 && !p.responseErrorReason) {
    try {
      const r = await api.debugger.sendCommand(t, 'Fetch.getResponseBody', { requestId: p.requestId });
      const body = r.base64Encoded ? b64bytes(r.body) : new TextEncoder().encode(r.body);
      const url = p.request && p.request.url;
      captured.set(tabId, { url, verdict: onBody(tabId, url, { status, headers: p.responseHeaders || [], body }) });
    } catch {
      // no body (e.g. too large for DevTools): the verifier re-fetches
    }
  }
  await api.debugger.sendCommand(t, 'Fetch.continueResponse', { requestId: p.requestId })
    .catch(() => api.debugger.sendCommand(t, 'Fetch.continueRequest', { requestId: p.requestId }).catch(() => {}));
}

// setup(api, onBody(tabId, url, received) -> Promise<{out, via}>, enabled())
// The debugger namespace exists only once the optional permission is
// granted, which may happen while the worker runs: listeners are added then.
let listening = false;
function listen(api) {
  if (listening || !api.debugger) return;
  listening = true;
  api.debugger.onEvent.addListener((src, method, params) => {
    if (method === 'Fetch.requestPaused' && attached.has(src.tabId)) paused(api, src.tabId, params);
  });
  api.debugger.onDetach.addListener((src) => {
    attached.delete(src.tabId);
    api.storage.session.remove(`debugger:${src.tabId}`);
  });
}

export function setup(api, body, enabled) {
  onBody = body;
  const all = async () => {
    if (!(await enabled())) return api.debugger ? detachAll(api) : undefined;
    listen(api);
    for (const tab of await api.tabs.query({})) await attach(api, tab.id);
  };
  api.tabs.onCreated.addListener(async (tab) => {
    if (await enabled()) {
      listen(api);
      attach(api, tab.id);
    }
  });
  api.tabs.onRemoved.addListener((tabId) => { attached.delete(tabId); captured.delete(tabId); });
  api.storage.onChanged.addListener((ch, area) => { if (area === 'local' && ch.exactChromium) all(); });
  all();
}
