// options.js — the one option (verify scripts and styles too), and a check
// that the native host answers.  The extra permissions are requested here,
// from the click, and dropped again when the option is turned off.
import { api } from './compat.js';
import { call } from './native.js';

const EXTRA = { permissions: ['scripting'], origins: ['http://*/*', 'https://*/*'] };
const $ = (id) => document.getElementById(id);

async function main() {
  const { subresources } = await api.storage.local.get({ subresources: false });
  const have = await api.permissions.contains(EXTRA);
  $('subresources').checked = subresources && have;
  $('subresources').addEventListener('change', async (ev) => {
    let on = ev.target.checked;
    if (on) on = await api.permissions.request(EXTRA);
    else await api.permissions.remove(EXTRA);
    ev.target.checked = on;
    await api.storage.local.set({ subresources: on });
    $('status').textContent = on ? 'Scripts and styles will be verified from the next page load.' : 'Only pages are verified.';
  });
  $('ping').addEventListener('click', async () => {
    $('ping-result').textContent = '…';
    const out = await call(api, 'ping');
    $('ping-result').textContent = out.pong
      ? `OK, patient-verify ${out.pong.version || '(unknown version)'}`
      : `${out.error.code}: ${out.error.message}`;
  });
}

main();
