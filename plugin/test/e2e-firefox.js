#!/usr/bin/env node
// e2e-firefox.js — drive the system Firefox ESR (headless, WebDriver BiDi
// through puppeteer-core: no driver binary, no browser download) with the
// patient extension installed, and check page by page what it shows: the
// tab's state as the background keeps it, which bytes the verdict is about
// (source), the badge, the popup, and in enforce mode the interstitial.
//
//   node plugin/test/e2e-firefox.js --extension DIR --cases FILE
//        [--shots DIR] [--firefox /usr/bin/firefox-esr] [--proxy http://H:P]
//        [--profile DIR]
//
// --proxy takes http and https (CONNECT) through H:P.  --profile: start from
// this Firefox profile (e.g. one whose cert9.db trusts an interception CA, as
// an enterprise endpoint does; puppeteer adds its preferences and restores
// the profile's own afterwards).
//
// DIR is the Firefox copy of the extension (plugin/install.sh --browser
// firefox writes it: manifest.firefox.json as manifest.json).  FILE is JSON:
// {"options": {"enforce": true, ...},   storage.local before the first case
//  "cases": [{
//     "name": "...", "url": "http://...",
//     "finalUrl": "http://...",          where "url" redirects to (the tab's URL)
//     "options": {"enforce": true},      storage.local before this case
//     "policy": "FILE",                  copied over $PATIENT_POLICY before this case
//     "expect": "invalid",               state the extension must reach
//     "source": "received",              what the verdict must be about
//     "loads": true,                     the page itself must load (e.g. over HTTPS
//                                        through an interception CA the profile trusts)
//     "contains": ["..."],               text the popup must show
//     "shot": "popup-x.png",             popup screenshot (in --shots)
//     "resources": {"/js/app.js": "verified"}   scripts/styles and their state
//     "interstitial": {                  enforce: the page is stopped
//        "contains": ["..."], "shot": "interstitial.png",
//        "beacons": "http://.../beacons"  count of requests a rendered page makes:
//                                         unchanged until "Show anyway", more after (the twin)
//     }
// }]}
// The native host must be installed for $HOME (plugin/install.sh --browser
// firefox).  Exit 0 when every case passed, 1 otherwise.  Waits are on
// events and states with a generous timeout, never fixed sleeps.
import puppeteer from 'puppeteer-core';
import { readFileSync, writeFileSync, mkdirSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import * as S from '../extension/state.js';

const { STATE_STYLE } = S;
const GECKO_ID = 'verify@patient.example';

const { values: opt } = parseArgs({
  options: {
    extension: { type: 'string' },
    cases: { type: 'string' },
    shots: { type: 'string' },
    firefox: { type: 'string', default: '/usr/bin/firefox-esr' },
    proxy: { type: 'string' },
    profile: { type: 'string' },
    timeout: { type: 'string', default: '90' },
  },
});
for (const k of ['extension', 'cases']) if (!opt[k]) { console.error(`e2e-firefox.js: --${k} is required`); process.exit(2); }
const TIMEOUT = Number(opt.timeout) * 1000;
const { cases, options } = JSON.parse(readFileSync(opt.cases, 'utf8'));
if (opt.shots) mkdirSync(opt.shots, { recursive: true });

let failures = 0;
const fail = (name, msg) => { failures++; console.log(`not ok - ${name}: ${msg}`); };
const ok = (name, msg) => console.log(`ok - ${name}${msg ? `: ${msg}` : ''}`);

async function poll(fn, what, ms = TIMEOUT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A fixed moz-extension UUID, so the test can open the extension's pages.
const uuid = randomUUID();
const prefs = {
  'extensions.webextensions.uuids': JSON.stringify({ [GECKO_ID]: uuid }),
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'app.update.enabled': false,
};
if (opt.proxy) {
  const u = new URL(opt.proxy);
  Object.assign(prefs, {
    'network.proxy.type': 1,
    'network.proxy.http': u.hostname,
    'network.proxy.http_port': Number(u.port),
    'network.proxy.ssl': u.hostname,
    'network.proxy.ssl_port': Number(u.port),
    'network.proxy.no_proxies_on': '',
    'network.proxy.allow_hijacking_localhost': true,
  });
}

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: opt.firefox,
  headless: true,
  extraPrefsFirefox: prefs,
  ...(opt.profile ? { userDataDir: resolve(opt.profile) } : {}),
  protocolTimeout: TIMEOUT * 2,
  defaultViewport: { width: 440, height: 700 },
});
const base = `moz-extension://${uuid}`;

// WebDriver BiDi may not navigate to moz-extension: pages, so the test loads
// a copy of the extension with one more background script that opens the
// options page itself; that tab is the test's handle on the extension's
// storage and APIs (and becomes the popup, then the options page again).
// puppeteer does not see those navigations, so pages are told apart by
// asking them for location.href.
const copy = mkdtempSync(join(tmpdir(), 'patient-ff-ext-'));
cpSync(resolve(opt.extension), copy, { recursive: true });
{
  const m = JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8'));
  m.background.scripts.push('e2e-hook.js');
  writeFileSync(join(copy, 'manifest.json'), JSON.stringify(m, null, 2));
  writeFileSync(join(copy, 'e2e-hook.js'), "browser.tabs.create({ url: browser.runtime.getURL('options.html?e2e') });\n");
}
const href = (p) => p.evaluate(() => location.href).catch(() => '');
async function findPage(prefix) {
  return poll(async () => {
    for (const p of await browser.pages()) if ((await href(p)).startsWith(prefix)) return p;
    return null;
  }, `a page at ${prefix}`);
}
// Move an extension page to another of its pages and wait until it is there.
async function goExt(p, path) {
  await p.evaluate((u) => { location.href = u; }, `${base}/${path}`).catch(() => {});
  await poll(async () => (await href(p)) === `${base}/${path}` &&
    (await p.evaluate(() => document.readyState).catch(() => '')) === 'complete', `${path}`);
}

try {
  const id = await browser.installExtension(copy);
  if (id !== GECKO_ID) fail('extension id', `${id} != ${GECKO_ID}`);
  const ctl = await findPage(`${base}/options.html`);
  await ctl.setViewport({ width: 440, height: 700 }); // the popup's width, for its screenshots
  await poll(async () => (await ctl.evaluate(() => document.readyState).catch(() => '')) === 'complete', 'the options page');
  console.log(`# extension ${id}, ${await ctl.evaluate(() => navigator.userAgent)}`);

  const pong = await ctl.evaluate(() => browser.runtime.sendNativeMessage('org.patient.verify', { type: 'ping', id: 'e2e' })
    .catch((e) => ({ error: String(e.message || e) })));
  if (!pong || pong.type !== 'pong') fail('native host ping', JSON.stringify(pong));
  else ok('native host ping', `version ${pong.version}`);

  // the options page itself reaches the host too (under the CSP)
  await ctl.click('#ping');
  await ctl.waitForFunction(() => document.getElementById('ping-result').textContent.length > 1, { timeout: TIMEOUT });
  const r = await ctl.$eval('#ping-result', (e) => e.textContent);
  if (!r.startsWith('OK')) fail('options page', r);
  else ok('options page', r);

  if (options) await ctl.evaluate((o) => browser.storage.local.set(o), options);

  const tabStateFor = (url) => ctl.evaluate(async (u) => {
    const all = await browser.storage.session.get(null);
    return Object.values(all).find((t) => t && t.url === u) || null;
  }, url);

  for (const c of cases) {
    const name = c.name || c.url;
    try {
      // per case: the options (storage.local) and the policy the host reads
      // (it starts afresh for every request, so copying a file switches it)
      if (c.options) await ctl.evaluate((o) => browser.storage.local.set(o), c.options);
      if (c.policy) cpSync(c.policy, process.env.PATIENT_POLICY);
      const beacons = async () => Number(await (await fetch(c.interstitial.beacons)).text());
      const before = c.interstitial && c.interstitial.beacons ? await beacons() : 0;
      const page = await browser.newPage();
      // The load may end elsewhere (enforce moves the tab to the interstitial):
      // what counts is the extension's state, polled below.
      await page.goto(c.url, { waitUntil: 'load', timeout: TIMEOUT }).then(() => {
        if (c.loads) ok(`${name} page loads`);
      }, (e) => {
        console.log(`# ${name}: page load: ${e.message.split('\n')[0]}`);
        if (c.loads) fail(`${name} page loads`, e.message.split('\n')[0]);
      });
      const ts = await poll(async () => {
        const t = await tabStateFor(c.finalUrl || c.url);
        return t && t.state !== 'pending' ? t : null;
      }, `a verdict for ${c.url}`);
      if (ts.state !== c.expect) {
        const why = ts.error ? `${ts.error.code}: ${ts.error.message}` : JSON.stringify((ts.report && ts.report.results) || []).slice(0, 400);
        fail(name, `state ${ts.state}, expected ${c.expect} (${why})`);
      } else ok(name, `state ${ts.state}`);
      if (c.source && ts.source !== c.source) fail(`${name} source`, `verdict about ${ts.source} (${ts.sourceNote}), expected ${c.source}`);
      else if (c.source) ok(`${name} source`, ts.source);

      const checkBadge = async () => {
        const badge = await ctl.evaluate((tabId) => Promise.all([browser.action.getBadgeText({ tabId }), browser.action.getTitle({ tabId })]), ts.tabId);
        const want = STATE_STYLE[c.expect];
        if (badge[0] !== want.badge || badge[1] !== want.title) fail(`${name} badge`, `badge ${JSON.stringify(badge)}, expected ${JSON.stringify([want.badge, want.title])}`);
        else ok(`${name} badge`, JSON.stringify(badge[0]));
      };
      // with scripts and styles the page's badge waits for them; with the
      // interstitial, until it has replaced the page
      if (!c.resources && !c.interstitial) await checkBadge();

      if (c.interstitial) {
        const i = c.interstitial;
        await poll(async () => (await href(page)).startsWith(`${base}/interstitial.html`), 'the interstitial');
        await page.waitForSelector('main[data-state]', { timeout: TIMEOUT });
        const text = await page.$eval('body', (e) => e.textContent);
        const missing = (i.contains || []).filter((s) => !text.includes(s));
        if (missing.length) fail(`${name} interstitial`, `missing ${JSON.stringify(missing)} in:\n${text}`);
        else ok(`${name} interstitial`, `${(i.contains || []).length} expected strings shown`);
        const t = await tabStateFor(c.finalUrl || c.url);
        await poll(async () => (await ctl.evaluate((tabId) => browser.action.getBadgeText({ tabId }), ts.tabId)) === STATE_STYLE.invalid.badge,
          'the badge on the interstitial').catch(() => {});
        await checkBadge();
        if (!t || !t.blocked || t.state !== 'invalid') fail(`${name} blocked`, JSON.stringify(t && { state: t.state, blocked: t.blocked }));
        else ok(`${name} blocked`, 'state invalid, page stopped');
        if (opt.shots && i.shot) {
          await page.screenshot({ path: join(opt.shots, i.shot), fullPage: true });
          ok(`${name} screenshot`, i.shot);
        }
        if (i.beacons) {
          const n0 = (await beacons()) - before;
          if (n0 !== 0) fail(`${name} never rendered`, `${n0} beacon request(s): the page's content was rendered`);
          else ok(`${name} never rendered`, 'no request from the page\'s content');
          // the twin: "Show anyway" renders it, and the beacon is seen
          await page.click('#show');
          await poll(async () => (await beacons()) > before, 'the shown page\'s beacon');
          const after = await poll(async () => {
            const x = await tabStateFor(c.finalUrl || c.url);
            return x && x.state !== 'pending' && !x.blocked && x.checks > 0 ? x : null;
          }, 'the verdict of the page shown anyway');
          if (after.state !== 'invalid' || after.source !== 'received') fail(`${name} show anyway`, `state ${after.state}, source ${after.source}`);
          else ok(`${name} show anyway`, 'page rendered (beacon seen), still invalid on the exact bytes');
        }
      }

      if (c.resources) {
        const want = Object.entries(c.resources);
        const t = await poll(async () => {
          const x = await tabStateFor(c.finalUrl || c.url);
          const got = Object.entries((x && x.resources) || {});
          return want.every(([suffix]) => got.some(([u, e]) => u.endsWith(suffix) && e.state !== 'pending')) ? x : null;
        }, `results for ${want.map(([k]) => k).join(', ')}`).catch((e) => { fail(`${name} resources`, e.message); return null; });
        if (t) {
          for (const [suffix, st] of want) {
            const [, e] = Object.entries(t.resources).find(([k]) => k.endsWith(suffix));
            if (e.state !== st) fail(`${name} resource ${suffix}`, `state ${e.state}, expected ${st}`);
            else ok(`${name} resource ${suffix}`, e.state);
          }
        }
      }

      const popup = ctl;
      await goExt(popup, `popup.html?tab=${ts.tabId}`);
      await popup.waitForSelector('main[data-state]', { timeout: TIMEOUT });
      const text = await popup.$eval('main', (e) => e.textContent);
      const missing = (c.contains || []).filter((s) => !text.includes(s));
      if (missing.length) fail(`${name} popup`, `missing ${JSON.stringify(missing)} in:\n${text}`);
      else ok(`${name} popup`, `${(c.contains || []).length} expected strings shown`);
      const injected = await popup.evaluate(() => document.querySelectorAll('main script, main iframe, main svg, main img:not(header img), main [onerror], main [onload]').length);
      if (injected) fail(`${name} popup`, `${injected} elements injected from report strings`);
      if (opt.shots && c.shot) {
        await popup.screenshot({ path: join(opt.shots, c.shot), fullPage: true });
        ok(`${name} screenshot`, c.shot);
      }
      await page.close();
    } catch (e) {
      fail(name, e.message.split('\n')[0]);
    }
  }
} finally {
  await browser.close();
  rmSync(copy, { recursive: true, force: true });
}
console.log(failures ? `# ${failures} failure(s)` : '# all passed');
process.exit(failures ? 1 : 0);
