// native.js — talk to the native verifier host (patient-verify --native-host).
//
// The browser does the framing (4-byte little-endian length + UTF-8 JSON) and
// starts one host process per runtime.sendNativeMessage call.  This module
// builds requests, checks that a reply belongs to its request and has the
// documented shape, and maps browser errors to dotted codes.  The pure parts
// (request, checkReply, classifyError) take no browser API and are unit-tested.

export const HOST = 'org.patient.verify';
// The browsers accept up to 4 GB towards a host, but patient-verify takes
// requests up to the base64 of its body cap plus 1 MiB (docs/format/report.md).
export const MAX_BODY = 64 * 1024 * 1024; // patient-verify's default --max-body
export const MAX_REQUEST = Math.ceil(MAX_BODY / 3) * 4 + 1024 * 1024;
export const TIMEOUT_MS = 60000;
// Only these response headers matter to the verifier; the others (cookies!)
// never leave the browser.
export const RECEIVED_HEADERS = Object.freeze(['patient-change', 'patient-origin']);

let seq = 0;

// Standard base64 of a Uint8Array (Uint8Array.prototype.toBase64 where the
// browser has it; else btoa over pieces small enough for fromCharCode).
export function base64(bytes) {
  if (typeof bytes.toBase64 === 'function') return bytes.toBase64();
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

// The headers the verifier needs, from webRequest's / CDP's shapes
// ([{name, value}] or {name: value}), in order.
export function pickHeaders(headers) {
  const list = Array.isArray(headers)
    ? headers
    : Object.entries(headers && typeof headers === 'object' ? headers : {}).map(([name, value]) => ({ name, value }));
  const out = [];
  for (const h of list) {
    if (!h || typeof h.name !== 'string' || typeof h.value !== 'string') continue;
    if (!RECEIVED_HEADERS.includes(h.name.toLowerCase())) continue;
    // CDP joins repeated headers with "\n"; each is its own header here
    for (const v of h.value.split('\n')) out.push({ name: h.name, value: v });
  }
  return out;
}

// The verifier takes at most this many certificates of a chain (leaf first).
export const MAX_CHAIN = 16;
const PIN = /^sha256-[A-Za-z0-9+/]{43}=$/;

// request(type, url[, id][, received]) — received: {status, headers, body: Uint8Array,
// tlsChain: ["sha256-<base64>" SPKI pins, leaf first]} as the browser got them; the
// host then verifies those bytes without a re-fetch, and judges who decrypted the
// page from the chain the browser verified (no chain: not judged).
export function request(type, url, id = `${Date.now().toString(36)}-${++seq}`, received = null) {
  const msg = type === 'ping' ? { type, id } : { type, id, url };
  if (type !== 'ping' && !/^https?:\/\//i.test(url || '')) throw new Error('only http and https URLs are verified');
  if (received) {
    if (!(received.body instanceof Uint8Array)) throw new Error('the received body is not bytes');
    if (received.body.length > MAX_BODY) {
      const e = new Error(`the page is ${received.body.length} bytes, over the verifier's ${MAX_BODY}-byte cap`);
      e.code = 'body.too_large';
      throw e;
    }
    msg.received = { status: received.status, headers: pickHeaders(received.headers), body: base64(received.body) };
    const chain = Array.isArray(received.tlsChain) ? received.tlsChain : [];
    if (chain.length && chain.every((p) => typeof p === 'string' && PIN.test(p))) {
      // a longer chain keeps its first certificates and its trust anchor, as the verifier's own fetch does
      msg.received.tls_chain = chain.length > MAX_CHAIN ? [...chain.slice(0, MAX_CHAIN - 1), chain[chain.length - 1]] : chain.slice();
    }
  }
  if ((msg.url || '').length + (msg.received ? msg.received.body.length + JSON.stringify(msg.received.headers).length : 0) > MAX_REQUEST)
    throw new Error('request too large for native messaging');
  return msg;
}

function isReport(r) {
  return !!r && typeof r === 'object' && r.patient === 1 && r.type === 'report' && typeof r.verdict === 'string';
}

function bad(message) {
  return { error: { code: 'host.bad_reply', message } };
}

// checkReply(req, reply) -> {report} | {bundle} | {pong} | {error: {code, message}}
export function checkReply(req, reply) {
  if (!reply || typeof reply !== 'object' || Array.isArray(reply)) return bad('the verifier answered something that is not a JSON object');
  if (req.type === 'ping') {
    return reply.type === 'pong' ? { pong: { version: typeof reply.version === 'string' ? reply.version : null } } : bad('no pong');
  }
  // An over-cap request is answered without an id (the host skipped it unread).
  if (reply.id === undefined && reply.error && reply.error.code === 'request.too_large')
    return { error: { code: 'request.too_large', message: typeof reply.error.message === 'string' ? reply.error.message : 'request too large' } };
  if (reply.id !== req.id) return bad('the answer belongs to another request');
  if (reply.error && typeof reply.error === 'object') {
    return {
      error: {
        code: typeof reply.error.code === 'string' ? reply.error.code : 'host.error',
        message: typeof reply.error.message === 'string' ? reply.error.message : 'the verifier reported an error',
      },
    };
  }
  if (req.type === 'verify') return isReport(reply.report) ? { report: reply.report } : bad('the answer holds no valid report');
  if (req.type === 'bundle') {
    return reply.bundle && typeof reply.bundle === 'object' ? { bundle: reply.bundle } : bad('the answer holds no evidence bundle');
  }
  return bad('unknown request type');
}

// Map what runtime.sendNativeMessage throws to a dotted code and a hint.
export function classifyError(err) {
  const m = String((err && err.message) || err || '');
  if (/not found/i.test(m)) return { code: 'host.missing', message: `${m} Install the native host: plugin/install.sh (see docs/PLUGIN.md).` };
  if (/forbidden/i.test(m)) return { code: 'host.forbidden', message: `${m} The host manifest's allowed_origins does not list this extension; rerun plugin/install.sh.` };
  if (/exited/i.test(m)) return { code: 'host.exited', message: `${m} Run patient-verify --native-host by hand to see why.` };
  if (/timed out/i.test(m)) return { code: 'host.timeout', message: m };
  return { code: 'host.failed', message: m || 'the native host failed' };
}

// call(api, type, url[, timeoutMs][, received]) -> same shape as checkReply; never throws.
export async function call(api, type, url, timeoutMs = TIMEOUT_MS, received = null) {
  let req;
  try {
    req = request(type, url, undefined, received);
  } catch (e) {
    return { error: { code: e.code || 'request.invalid', message: String(e.message || e) } };
  }
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the verifier timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const reply = await Promise.race([api.runtime.sendNativeMessage(HOST, req), timeout]);
    return checkReply(req, reply);
  } catch (e) {
    return { error: classifyError(e) };
  } finally {
    clearTimeout(timer);
  }
}
