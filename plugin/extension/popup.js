// popup.js — show the current tab's verdict and changes; save evidence.
// The tab is the active one, or ?tab=ID (used by the browser test, and handy
// for opening the report of a tab in a full page).
import { api } from './compat.js';
import { initial } from './state.js';
import { model, evidenceFileName } from './render.js';
import { build } from './view.js';

const $ = (id) => document.getElementById(id);
let current = null;

async function tabId() {
  const q = new URLSearchParams(location.search).get('tab');
  if (q !== null && /^\d+$/.test(q)) return Number(q);
  const [tab] = await api.tabs.query({ active: true, currentWindow: true });
  return tab ? tab.id : -1;
}

function show(ts) {
  current = ts;
  const m = model(ts);
  $('report').replaceChildren(build(document, m));
  document.body.dataset.state = m.state;
  $('save').disabled = !m.canSaveEvidence;
  $('recheck').disabled = !/^https?:/i.test(ts.url || '') || m.state === 'pending';
}

function status(msg) {
  $('status').textContent = msg;
}

async function saveEvidence() {
  $('save').disabled = true;
  status('Asking the verifier for the evidence…');
  const out = await api.runtime.sendMessage({ type: 'bundle', tabId: current.tabId });
  if (!out || !out.bundle) {
    status(`Could not save: ${(out && out.error && out.error.message) || 'no answer'}`);
  } else {
    const blob = new Blob([JSON.stringify(out.bundle, null, 2)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = evidenceFileName(current.url, current.report && current.report.checked_at);
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    status(`Saved ${a.download}`);
  }
  $('save').disabled = false;
}

async function main() {
  const id = await tabId();
  const k = `tab:${id}`;
  const o = await api.storage.session.get(k);
  show(o[k] || initial(id));
  api.storage.onChanged.addListener((changes, area) => {
    if (area === 'session' && changes[k] && changes[k].newValue) show(changes[k].newValue);
  });
  $('save').addEventListener('click', saveEvidence);
  $('recheck').addEventListener('click', async () => {
    status('Checking again…');
    await api.runtime.sendMessage({ type: 'recheck', tabId: id });
    status('');
  });
}

main();
