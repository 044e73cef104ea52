// capture.js — the bytes the browser received, in Firefox.
//
// webRequest.filterResponseData (a StreamFilter) sees each response body as
// the page will: after Content-Encoding is undone, before any parsing.  For
// every top-level document (and, with the option, every script and style
// sheet) the filter keeps a copy of the bytes while passing them on, and
// onHeadersReceived gives the status and the Patient-* headers of the same
// response.  In enforce mode the document's bytes are held instead of passed
// on until the verdict says what to do with them.
//
// Only what the browser really got is ever sent to the verifier: a response
// the filter could not see whole (served from the cache without a network
// request, cut short, over the body cap) resolves to {unavailable: why}, and
// the caller falls back to asking the verifier to fetch the page again.

import { MAX_BODY } from './native.js';

const HEADERS_WAIT_MS = 30000;

// capture(api, details, {hold}) -> {
//   requestId, tabId, type, url (updated to the final URL after redirects),
//   done: Promise<{received: {status, headers, body[, tlsChain]}} | {unavailable: why}>,
//   release(), block(html) — only when hold: what the held document becomes.
// }
export function capture(api, details, { hold = false } = {}) {
  const chunks = [];
  let size = 0, over = false, settled = false, status = 0, headers = [], tlsChain = null;
  let resolve, gotHeaders;
  const done = new Promise((r) => { resolve = r; });
  // The filter's data travels apart from the webRequest events: the body
  // may be complete before onHeadersReceived has reached this page.
  const headersIn = new Promise((r) => { gotHeaders = r; });
  const c = { requestId: details.requestId, tabId: details.tabId, type: details.type, url: details.url, done, hold };
  const finish = (v) => { if (!settled) { settled = true; resolve(v); } };

  let filter;
  try {
    filter = api.webRequest.filterResponseData(details.requestId);
  } catch (e) {
    finish({ unavailable: `the browser gave no access to the response (${e.message || e})` });
    c.release = c.block = () => {};
    return c;
  }

  // Held bytes go out only once, whichever comes first: release or block.
  let out = false;
  c.release = () => {
    if (out) return;
    out = true;
    try {
      for (const b of chunks) filter.write(b);
      filter.close();
    } catch { /* the request is gone */ }
  };
  c.block = (html) => {
    if (out) return;
    out = true;
    try {
      filter.write(new TextEncoder().encode(html));
      filter.close();
    } catch { /* the request is gone */ }
  };

  filter.ondata = (ev) => {
    const b = new Uint8Array(ev.data);
    size += b.length;
    if (size > MAX_BODY && !over) {
      // Too big to verify: stop holding and copying; the page still gets every byte.
      over = true;
      if (hold && !out) try { for (const x of chunks) filter.write(x); } catch { /* gone */ }
      chunks.length = 0;
      hold = false;
      out = true;
    }
    if (over) {
      try { filter.write(ev.data); } catch { /* gone */ }
      return;
    }
    chunks.push(b);
    if (!hold) try { filter.write(ev.data); } catch { /* gone */ }
  };
  filter.onstop = async () => {
    if (!hold) try { filter.close(); } catch { /* gone */ }
    if (over) return finish({ unavailable: `the response is over ${MAX_BODY} bytes, the verifier's cap`, tooLarge: true });
    const body = new Uint8Array(size);
    let off = 0;
    for (const b of chunks) { body.set(b, off); off += b.length; }
    if (!hold) chunks.length = 0;
    let timer;
    const late = new Promise((r) => { timer = setTimeout(r, HEADERS_WAIT_MS, false); });
    const have = await Promise.race([headersIn.then(() => true), late]);
    clearTimeout(timer);
    if (!have) return finish({ unavailable: 'the browser never reported the response headers' });
    finish({ received: tlsChain ? { status, headers, body, tlsChain } : { status, headers, body } });
  };
  filter.onerror = () => {
    finish({ unavailable: `the response could not be read (${filter.error || 'filter error'})` });
    if (hold) c.release();
  };

  // chain: the SPKI pins of the certificate chain Firefox verified for this
  // response (tlsChain below), null for plain http or when not known
  c.headers = (d, chain = null) => {
    // the last response of the request wins (redirects come first)
    status = d.statusCode;
    headers = d.responseHeaders || [];
    tlsChain = chain;
    c.url = d.url;
    // a redirect's headers are not the page's: wait for the final response
    if (status < 300 || status >= 400) gotHeaders();
  };
  return c;
}

// The text the held document is replaced with when it is blocked, before the
// tab moves on to the extension's interstitial page.  Plain, script-free HTML:
// if the move fails the user still reads why the page is not shown.
export function placeholder(url, code) {
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html><meta charset="utf-8"><title>Blocked by patient</title>` +
    `<h1>patient stopped this page</h1><p>${esc(url)} failed verification (${esc(code)}). ` +
    `Open the patient toolbar button for details.</p>`;
}

// The certificate chain Firefox verified for an https response, as SPKI pins
// ("sha256-<base64>", leaf first, trust anchor last): what tells the verifier
// who holds the other end of the page's TLS (an interception CA shows up here).
// Only from a blocking onHeadersReceived listener (Firefox's rule).  null when
// the API is missing, the connection is not secure, or a digest is missing.
export async function tlsChain(api, details) {
  if (!/^https:/i.test(details.url || '') || typeof (api.webRequest && api.webRequest.getSecurityInfo) !== 'function') return null;
  try {
    const si = await api.webRequest.getSecurityInfo(details.requestId, { certificateChain: true });
    if (!si || si.state !== 'secure' || !Array.isArray(si.certificates) || !si.certificates.length) return null;
    const pins = si.certificates.map((c) => c && c.subjectPublicKeyInfoDigest && c.subjectPublicKeyInfoDigest.sha256);
    return pins.every((p) => typeof p === 'string' && p.length) ? pins.map((p) => `sha256-${p}`) : null;
  } catch {
    return null;
  }
}
