#!/usr/bin/env node
// e2e.js — drive the system Chromium with the patient extension loaded and
// check, page by page, what the extension shows: the tab's state (as kept by
// the service worker), its badge, and the popup's content; optionally take a
// screenshot of the popup, save the evidence bundle, or re-check the page.
//
//   node plugin/test/e2e.js --extension DIR --user-data-dir DIR --cases FILE
//        [--shots DIR] [--chromium /usr/bin/chromium] [--proxy URL]
//
// FILE is JSON: {"cases": [{
//     "name": "modified",                 label in the output
//     "url": "http://127.0.0.1:8080/x",   page to open in a new tab
//     "expect": "modified",               state the extension must reach
//     "contains": ["Acme", "tracker removed"],  text the popup must show
//     "shot": "popup-modified.png",       screenshot of the popup (in --shots)
//     "evidence": true,                   click "Save evidence", check the download
//     "bundleContains": "text",           ... and that its body holds this text
//     "recheck": "invalid"                click "Check again", state must stay this
//     "resources": {"/js/app.js": "verified"}  with --subresources: scripts/styles
//                                         whose URL ends so, and their state
//     "effective": "modified"             with "resources": the page's state once
//                                         its scripts and styles are in (badge too)
// }]}
// "source": "received" | "refetch"       which bytes the verdict must be about
// "loads": true                          the page itself must load (e.g. over HTTPS
//                                         through an interception CA the browser trusts)
// --exact turns "verify the exact bytes Chromium received" on (the debugger),
// and each page is opened only once the debugger is attached to every tab.
// --subresources turns the "verify scripts and styles" option on.  The browser
// asks the user before granting its optional permissions, which a test cannot
// answer, so the test loads a copy of the extension in which they are required
// (same key, same id) and sets the option in storage.local.
// The native host must already be installed for --user-data-dir (plugin/install.sh
// --user-data-dir DIR).  Exit 0 when every case passed, 1 otherwise.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as S from '../extension/state.js';

const { STATE_STYLE } = S;

const { values: opt } = parseArgs({
  options: {
    extension: { type: 'string' },
    'user-data-dir': { type: 'string' },
    cases: { type: 'string' },
    shots: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    proxy: { type: 'string' },
    timeout: { type: 'string', default: '60' },
    subresources: { type: 'boolean', default: false },
    exact: { type: 'boolean', default: false },
  },
});
for (const k of ['extension', 'user-data-dir', 'cases']) if (!opt[k]) { console.error(`e2e.js: --${k} is required`); process.exit(2); }

let EXT = resolve(opt.extension);
if (opt.subresources || opt.exact) {
  const copy = join(resolve(opt['user-data-dir']), '..', `${opt['user-data-dir'].split('/').pop()}-extension`);
  cpSync(EXT, copy, { recursive: true });
  const m = JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8'));
  m.permissions = [...m.permissions, ...m.optional_permissions];
  m.host_permissions = m.optional_host_permissions;
  delete m.optional_permissions;
  delete m.optional_host_permissions;
  writeFileSync(join(copy, 'manifest.json'), JSON.stringify(m, null, 2));
  EXT = copy;
}
const TIMEOUT = Number(opt.timeout) * 1000;
const { cases } = JSON.parse(readFileSync(opt.cases, 'utf8'));
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

const args = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--no-default-browser-check',
  `--disable-extensions-except=${EXT}`, `--load-extension=${EXT}`,
];
if (opt.proxy) args.push(`--proxy-server=${opt.proxy}`, '--proxy-bypass-list=<-loopback>');

const ctx = await chromium.launchPersistentContext(resolve(opt['user-data-dir']), {
  executablePath: opt.chromium,
  headless: false, // --headless=new is in args: extensions need the new headless mode
  args,
  ignoreDefaultArgs: ['--disable-extensions', '--disable-component-extensions-with-background-pages'],
  acceptDownloads: true,
  viewport: { width: 440, height: 700 },
});

try {
  const sw = ctx.serviceWorkers().find((w) => w.url().startsWith('chrome-extension://'))
    || await ctx.waitForEvent('serviceworker', { timeout: TIMEOUT });
  const extId = new URL(sw.url()).host;
  console.log(`# extension ${extId}, ${await sw.evaluate(() => navigator.userAgent)}`);
  const manifestKeyId = await sw.evaluate(() => chrome.runtime.id);
  if (manifestKeyId !== extId) fail('extension id', `${manifestKeyId} != ${extId}`);

  // the host is installed and answers
  const pong = await sw.evaluate(() => chrome.runtime.sendNativeMessage('org.patient.verify', { type: 'ping', id: 'e2e' })
    .catch((e) => ({ error: String(e.message || e) })));
  if (!pong || pong.type !== 'pong') fail('native host ping', JSON.stringify(pong));
  else ok('native host ping', `version ${pong.version}`);

  // the options page loads under the CSP and reaches the host too
  {
    const o = await ctx.newPage();
    const errs = [];
    o.on('pageerror', (e) => errs.push(e.message));
    o.on('console', (m) => { if (m.type() === 'error') errs.push(m.text()); });
    await o.goto(`chrome-extension://${extId}/options.html`);
    await o.click('#ping');
    await o.waitForFunction(() => document.getElementById('ping-result').textContent.length > 1, null, { timeout: TIMEOUT });
    const r = await o.textContent('#ping-result');
    if (!r.startsWith('OK') || errs.length) fail('options page', `${r} ${errs.join(' | ')}`);
    else ok('options page', r);
    await o.close();
  }

  if (opt.subresources) await sw.evaluate(() => chrome.storage.local.set({ subresources: true }));
  if (opt.exact) await sw.evaluate(() => chrome.storage.local.set({ exactChromium: true }));
  // every open tab has the debugger attached (debugger.js notes it in storage.session)
  const allAttached = () => sw.evaluate(async () => {
    const [tabs, all] = await Promise.all([chrome.tabs.query({}), chrome.storage.session.get(null)]);
    return tabs.every((t) => all[`debugger:${t.id}`] === true);
  });

  const tabStateFor = (url) => sw.evaluate(async (u) => {
    const all = await chrome.storage.session.get(null);
    return Object.values(all).find((t) => t && t.url === u) || null;
  }, url);

  for (const c of cases) {
    const name = c.name || c.url;
    try {
      const page = await ctx.newPage();
      if (opt.exact) await poll(allAttached, 'the debugger on the new tab');
      await page.goto(c.url, { waitUntil: 'load', timeout: TIMEOUT }).then(() => {
        if (c.loads) ok(`${name} page loads`);
      }, (e) => {
        // a page the browser cannot load still gets verified; say so and go on
        console.log(`# ${name}: page load: ${e.message.split('\n')[0]}`);
        if (c.loads) fail(`${name} page loads`, e.message.split('\n')[0]);
      });
      const ts = await poll(async () => {
        const t = await tabStateFor(c.url);
        if (!t) return null;
        if (c.expect === 'pending') return t.state === 'pending' ? t : null;
        return t.state !== 'pending' ? t : null;
      }, `a verdict for ${c.url}`);
      if (ts.state !== c.expect) {
        const why = ts.error ? `${ts.error.code}: ${ts.error.message}` : JSON.stringify((ts.report && ts.report.results) || []).slice(0, 400);
        fail(name, `state ${ts.state}, expected ${c.expect} (${why})`);
      } else ok(name, `state ${ts.state}`);
      if (c.source && ts.source !== c.source) fail(`${name} source`, `verdict about ${ts.source} (${ts.sourceNote}), expected ${c.source}`);
      else if (c.source) ok(`${name} source`, ts.source);

      if (!c.effective) { // with resources, the badge is checked once they are in
      const badge = await sw.evaluate((tabId) => Promise.all([chrome.action.getBadgeText({ tabId }), chrome.action.getTitle({ tabId })]), ts.tabId);
      const want = STATE_STYLE[c.expect];
      if (badge[0] !== want.badge || badge[1] !== want.title) fail(`${name} badge`, `badge ${JSON.stringify(badge)}, expected ${JSON.stringify([want.badge, want.title])}`);
      else ok(`${name} badge`, JSON.stringify(badge[0]));
      }

      const popup = await ctx.newPage();
      const pageErrors = [];
      popup.on('pageerror', (e) => pageErrors.push(e.message));
      popup.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
      await popup.goto(`chrome-extension://${extId}/popup.html?tab=${ts.tabId}`);
      // the popup shows what the tab has (a wrong state was reported above)
      await popup.waitForSelector('main[data-state]', { timeout: TIMEOUT });
      const text = await popup.locator('main').textContent();
      const missing = (c.contains || []).filter((s) => !text.includes(s));
      if (missing.length) fail(`${name} popup`, `missing ${JSON.stringify(missing)} in:\n${text}`);
      else ok(`${name} popup`, `${(c.contains || []).length} expected strings shown`);
      // report strings must never become markup
      const injected = await popup.evaluate(() => document.querySelectorAll('main script, main iframe, main svg, main img:not(header img), main [onerror], main [onload]').length);
      if (injected) fail(`${name} popup`, `${injected} elements injected from report strings`);
      if (opt.shots && c.shot) {
        await popup.screenshot({ path: join(opt.shots, c.shot), fullPage: true });
        ok(`${name} screenshot`, c.shot);
      }

      if (c.evidence) {
        const [dl] = await Promise.all([popup.waitForEvent('download', { timeout: TIMEOUT }), popup.click('#save')]);
        const path = await dl.path();
        const bundle = JSON.parse(readFileSync(path, 'utf8'));
        if (!bundle || typeof bundle !== 'object' || bundle.patient !== 1) fail(`${name} evidence`, `bad bundle ${JSON.stringify(bundle).slice(0, 200)}`);
        else ok(`${name} evidence`, `${dl.suggestedFilename()} (${readFileSync(path).length} bytes)`);
        // the evidence holds the body the verdict was about
        const body = bundle && typeof bundle.body === 'string' ? Buffer.from(bundle.body, 'base64').toString('utf8') : '';
        if (c.bundleContains && !body.includes(c.bundleContains)) fail(`${name} evidence body`, `no ${JSON.stringify(c.bundleContains)} in the bundled body`);
        else if (c.bundleContains) ok(`${name} evidence body`, `holds ${JSON.stringify(c.bundleContains)}`);
      }

      if (c.resources) {
        const want = Object.entries(c.resources);
        const t = await poll(async () => {
          const x = await tabStateFor(c.url);
          const urls = Object.keys((x && x.resources) || {});
          return want.every(([suffix]) => urls.some((u) => u.endsWith(suffix))) ? x : null;
        }, `results for ${want.map(([k]) => k).join(', ')}`).catch((e) => { fail(`${name} resources`, e.message); return null; });
        if (t) {
          if (c.effective) {
            const eff = S.effectiveState(t);
            const b = await sw.evaluate((tabId) => chrome.action.getBadgeText({ tabId }), t.tabId);
            if (eff !== c.effective || b !== STATE_STYLE[c.effective].badge) fail(`${name} page with its resources`, `state ${eff}, badge ${b}, expected ${c.effective}`);
            else ok(`${name} page with its resources`, `${eff}, badge ${JSON.stringify(b)}`);
          }
          for (const [suffix, st] of want) {
            const [u, r] = Object.entries(t.resources).find(([k]) => k.endsWith(suffix));
            if (r.state !== st) fail(`${name} resource ${suffix}`, `state ${r.state}, expected ${st}`);
            else ok(`${name} resource ${suffix}`, r.state);
          }
          await popup.reload();
          await popup.waitForSelector('section.resources', { timeout: TIMEOUT });
          const listed = await popup.locator('section.resources').textContent();
          const missing = want.filter(([suffix]) => !listed.includes(suffix)).map(([k]) => k);
          if (missing.length) fail(`${name} resources popup`, `not listed: ${missing.join(', ')}`);
          else ok(`${name} resources popup`, `${Object.keys(t.resources).length} listed`);
          if (opt.shots && c.resourcesShot) await popup.screenshot({ path: join(opt.shots, c.resourcesShot), fullPage: true });
        }
      }

      if (c.recheck) {
        const before = ts.checks;
        await popup.click('#recheck');
        const after = await poll(async () => {
          const t = await tabStateFor(c.url);
          return t && t.checks > before ? t : null;
        }, 'the re-check');
        if (after.state !== c.recheck) fail(`${name} recheck`, `state ${after.state} after re-check, expected ${c.recheck}`);
        else ok(`${name} recheck`, `still ${after.state} after a later answer`);
      }
      if (pageErrors.length) fail(`${name} popup errors`, pageErrors.join(' | '));
      await popup.close();
      await page.close();
    } catch (e) {
      fail(name, e.message.split('\n')[0]);
    }
  }
} finally {
  await ctx.close();
}
console.log(failures ? `# ${failures} failure(s)` : '# all passed');
process.exit(failures ? 1 : 0);
