// interstitial.js — what enforce mode shows instead of an invalid page: the
// page's URL, the verifier's failed checks (the popup's report, built with
// textContent only), "Go back" and "Show anyway" (loads the page once more,
// not held; the badge still says invalid).
import { api } from './compat.js';
import { initial } from './state.js';
import { model } from './render.js';
import { build } from './view.js';

const $ = (id) => document.getElementById(id);

async function main() {
  const q = new URLSearchParams(location.search).get('tab');
  const tabId = q !== null && /^\d+$/.test(q) ? Number(q) : -1;
  const k = `tab:${tabId}`;
  const ts = (await api.storage.session.get(k))[k] || initial(tabId);
  $('url').textContent = ts.url || '(unknown)';
  $('report').replaceChildren(build(document, model(ts)));
  $('back').addEventListener('click', () => history.back());
  $('show').addEventListener('click', async () => {
    $('status').textContent = 'Loading the page without holding it…';
    const r = await api.runtime.sendMessage({ type: 'showAnyway', tabId });
    if (!r || !r.ok) $('status').textContent = 'Could not show the page.';
  });
}

main();
