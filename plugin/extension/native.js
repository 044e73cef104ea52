// native.js — talk to the native verifier host (patient-verify --native-host).
//
// The browser does the framing (4-byte little-endian length + UTF-8 JSON) and
// starts one host process per runtime.sendNativeMessage call.  This module
// builds requests, checks that a reply belongs to its request and has the
// documented shape, and maps browser errors to dotted codes.  The pure parts
// (request, checkReply, classifyError) take no browser API and are unit-tested.

export const HOST = 'org.patient.verify';
export const MAX_REQUEST = 1024 * 1024; // what Chromium accepts from an extension
export const TIMEOUT_MS = 60000;

let seq = 0;

export function request(type, url, id = `${Date.now().toString(36)}-${++seq}`) {
  const msg = type === 'ping' ? { type, id } : { type, id, url };
  if (type !== 'ping' && !/^https?:\/\//i.test(url || '')) throw new Error('only http and https URLs are verified');
  if (JSON.stringify(msg).length > MAX_REQUEST) throw new Error('request too large for native messaging');
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

// call(api, type, url) -> same shape as checkReply; never throws.
export async function call(api, type, url, timeoutMs = TIMEOUT_MS) {
  let req;
  try {
    req = request(type, url);
  } catch (e) {
    return { error: { code: 'request.invalid', message: String(e.message || e) } };
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
