// options.js — the options (verify scripts and styles too; Firefox: enforce;
// Chromium: exact bytes through the debugger), and a check that the native
// host answers.  Chromium's extra permissions are requested here, from the
// click, and dropped again when the option is turned off; Firefox's manifest
// already holds what its options need (host access for the StreamFilter).
import { api } from './compat.js';
import { call } from './native.js';

const FIREFOX = typeof (api.webRequest && api.webRequest.filterResponseData) === 'function';
const EXTRA = {
  subresources: FIREFOX ? null : { permissions: ['scripting'], origins: ['http://*/*', 'https://*/*'] },
  enforce: null,
  exactChromium: { permissions: ['debugger'] },
};
const SAID = {
  subresources: ['Scripts and styles will be verified from the next page load.', 'Only pages are verified.'],
  enforce: ['Pages are held until verified; invalid ones are stopped.', 'Pages are shown at once and verified alongside.'],
  exactChromium: ['Pages are verified as Chromium received them (debugger attached).', 'The verifier fetches each page again.'],
};
const $ = (id) => document.getElementById(id);

async function main() {
  // first, before any await: a click must never find the button dead
  $('ping').addEventListener('click', async () => {
    $('ping-result').textContent = '…';
    const out = await call(api, 'ping');
    $('ping-result').textContent = out.pong
      ? `OK, patient-verify ${out.pong.version || '(unknown version)'}`
      : `${out.error.code}: ${out.error.message}`;
  });
  for (const n of document.querySelectorAll(FIREFOX ? '.chromium' : '.firefox')) n.hidden = true;
  const o = await api.storage.local.get({ subresources: false, enforce: false, exactChromium: false });
  for (const name of Object.keys(EXTRA)) {
    if ((name === 'enforce' && !FIREFOX) || (name === 'exactChromium' && FIREFOX)) continue;
    const box = $(name);
    box.checked = o[name] && (!EXTRA[name] || await api.permissions.contains(EXTRA[name]));
    box.addEventListener('change', async (ev) => {
      let on = ev.target.checked;
      if (EXTRA[name]) {
        if (on) on = await api.permissions.request(EXTRA[name]);
        else await api.permissions.remove(EXTRA[name]);
      }
      ev.target.checked = on;
      await api.storage.local.set({ [name]: on });
      $('status').textContent = SAID[name][on ? 0 : 1];
    });
  }
}

main();
