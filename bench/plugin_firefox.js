// bench/plugin_firefox.js — driven by bench/plugin: load URL N times in
// Firefox with the patient extension and print, per load, the milliseconds
// from the end of the document's response (webRequest.onCompleted's
// timeStamp) to the moment the verdict lands in the tab's state
// (storage.onChanged), both taken in the extension's own process clock.
//   node plugin_firefox.js --extension DIR --url URL --runs N --firefox BIN
import puppeteer from 'puppeteer-core';
import { readFileSync, writeFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';

const { values: opt } = parseArgs({
  options: {
    extension: { type: 'string' }, url: { type: 'string' }, runs: { type: 'string', default: '10' },
    firefox: { type: 'string', default: '/usr/bin/firefox-esr' },
  },
});
const uuid = randomUUID();
const base = `moz-extension://${uuid}`;
// as in plugin/test/e2e-firefox.js: a hook opens the options page, the bench's handle
const copy = mkdtempSync(join(tmpdir(), 'patient-bench-ext-'));
cpSync(resolve(opt.extension), copy, { recursive: true });
const m = JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8'));
m.background.scripts.push('e2e-hook.js');
writeFileSync(join(copy, 'manifest.json'), JSON.stringify(m));
writeFileSync(join(copy, 'e2e-hook.js'), "browser.tabs.create({ url: browser.runtime.getURL('options.html?e2e') });\n");

const browser = await puppeteer.launch({
  browser: 'firefox', executablePath: opt.firefox, headless: true,
  extraPrefsFirefox: { 'extensions.webextensions.uuids': JSON.stringify({ 'verify@patient.example': uuid }) },
});
const href = (p) => p.evaluate(() => location.href).catch(() => '');
async function until(fn, ms = 120000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
try {
  await browser.installExtension(copy);
  const ctl = await until(async () => {
    for (const p of await browser.pages()) if ((await href(p)).startsWith(`${base}/options.html`)) return p;
    return null;
  });
  await until(async () => (await ctl.evaluate(() => document.readyState).catch(() => '')) === 'complete');
  await ctl.evaluate((url) => {
    window.ends = {};
    window.verdicts = {};
    browser.webRequest.onCompleted.addListener((d) => { if (d.url === url) window.ends[d.tabId] = d.timeStamp; },
      { urls: ['http://*/*'], types: ['main_frame'] });
    browser.storage.onChanged.addListener((ch, area) => {
      if (area !== 'session') return;
      for (const [k, v] of Object.entries(ch)) {
        const t = v.newValue;
        if (k.startsWith('tab:') && t && t.url === url && t.state !== 'pending' && !(t.tabId in window.verdicts))
          window.verdicts[t.tabId] = { at: Date.now(), state: t.state, source: t.source };
      }
    });
  }, opt.url);
  for (let i = 0; i < Number(opt.runs); i++) {
    const page = await browser.newPage();
    await page.goto(opt.url, { waitUntil: 'load' });
    const r = await until(() => ctl.evaluate(() => {
      const ids = Object.keys(window.verdicts).filter((id) => id in window.ends && !window.done?.[id]);
      if (!ids.length) return null;
      const id = ids[0];
      window.done = { ...(window.done || {}), [id]: true };
      return { ms: window.verdicts[id].at - window.ends[id], state: window.verdicts[id].state, source: window.verdicts[id].source };
    }));
    console.log(JSON.stringify(r));
    await page.close();
  }
} finally {
  await browser.close();
  rmSync(copy, { recursive: true, force: true });
}
