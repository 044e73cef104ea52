// view.js — build the popup's DOM from a render.js model.
//
// Only createElement, createTextNode, appendChild, setAttribute (fixed
// attribute names) and textContent: no innerHTML / insertAdjacentHTML /
// document.write, so no string from a report can become markup.  `doc` is
// passed in so the unit tests can run this against a minimal fake document.

function el(doc, tag, attrs, ...kids) {
  const n = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') n.className = v;
    else n.setAttribute(k, String(v));
  }
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    n.appendChild(typeof k === 'string' || typeof k === 'number' ? doc.createTextNode(String(k)) : k);
  }
  return n;
}

function row(doc, label, value, cls) {
  if (value === null || value === undefined || value === '') return null;
  return el(doc, 'div', { class: `row ${cls || ''}`.trim() },
    el(doc, 'span', { class: 'label' }, label),
    typeof value === 'string' ? el(doc, 'span', { class: 'value' }, value) : value);
}

function excerpt(doc, label, s, cls) {
  if (s === null) return null;
  return el(doc, 'div', { class: `excerpt ${cls}` }, el(doc, 'span', { class: 'label' }, label), el(doc, 'code', {}, s));
}

function editNode(doc, e) {
  return el(doc, 'li', { class: 'edit' },
    el(doc, 'div', { class: 'edit-head' }, `Edit ${e.index}: ${e.what}`),
    row(doc, 'Where', e.where),
    excerpt(doc, 'Removed', e.deletedText, 'del'),
    excerpt(doc, 'Added', e.insertedText, 'ins'),
    row(doc, 'Why', e.reason + (e.reasonCode && e.reasonCode !== e.reason ? ` (${e.reasonCode})` : '')),
    row(doc, 'Rule', e.rule),
    row(doc, 'Note', e.note));
}

function changeNode(doc, c) {
  const disclosure = c.disclosureHref
    ? el(doc, 'a', { href: c.disclosureHref, target: '_blank', rel: 'noopener noreferrer' }, c.disclosure)
    : c.disclosure;
  return el(doc, 'section', { class: `change ${c.trusted ? 'trusted' : 'untrusted'}` },
    el(doc, 'h3', {}, `Hop ${c.hop ?? '?'}: ${c.who}`),
    row(doc, 'Key', c.kid),
    row(doc, 'Service', c.service),
    row(doc, 'Trusted', c.trusted ? 'yes, by your policy' : 'NO — not allowed by your policy', c.trusted ? '' : 'bad'),
    row(doc, 'When', c.when),
    row(doc, 'Proof', c.proof),
    row(doc, 'Disclosure', disclosure),
    row(doc, 'Upstream', c.tls),
    el(doc, 'ol', { class: 'edits' }, ...c.edits.map((e) => editNode(doc, e))),
    c.moreEdits > 0 ? el(doc, 'p', { class: 'more' }, `… and ${c.moreEdits} more edits (save the evidence to see all)`) : null);
}

function resultNode(doc, r) {
  return el(doc, 'li', { class: `result ${r.severity}` },
    el(doc, 'span', { class: 'code' }, r.code),
    r.where ? el(doc, 'span', { class: 'where' }, ` (${r.where})`) : null,
    r.explanation ? el(doc, 'div', { class: 'explanation' }, r.explanation) : null);
}

// build(doc, model) -> a single element holding the whole report.
export function build(doc, m) {
  const root = el(doc, 'main', { class: `state-${m.state}`, 'data-state': m.state });
  root.appendChild(el(doc, 'header', { class: 'verdict' },
    el(doc, 'img', { src: m.icon, alt: '', width: 32, height: 32 }),
    el(doc, 'div', {},
      el(doc, 'h1', { id: 'headline' }, m.headline),
      m.summary ? el(doc, 'p', { class: 'summary' }, m.summary) : null)));
  root.appendChild(el(doc, 'p', { class: 'explanation' }, m.explanation));

  const facts = el(doc, 'section', { class: 'facts' },
    row(doc, 'Page', m.url, 'url'),
    row(doc, 'Origin', m.origin),
    m.manifest ? row(doc, 'Manifest', `version ${m.manifest.version ?? '?'}, expires ${m.manifest.expires ?? '?'}`) : null,
    m.manifest ? row(doc, 'Signed by', m.manifest.kid) : null,
    row(doc, 'Proof', m.proof),
    row(doc, 'Bytes', m.source, m.received ? 'source received' : 'source refetch'),
    // Who holds the other end of the page's TLS; denied and unknown
    // interceptors are failures and look like one.
    row(doc, 'TLS', m.decryption, m.decryptionBad ? 'tls bad' : 'tls'),
    m.blocked ? row(doc, 'Enforce', 'this page was stopped before it was shown', 'bad') : null,
    row(doc, 'Checked', m.checkedAt));
  root.appendChild(facts);

  if (m.error) {
    root.appendChild(el(doc, 'section', { class: 'error' },
      el(doc, 'h2', {}, 'What went wrong'),
      row(doc, 'Code', m.error.code),
      row(doc, 'Message', m.error.message)));
  }
  if (m.failed.length) {
    root.appendChild(el(doc, 'section', { class: 'failed' },
      el(doc, 'h2', {}, { invalid: 'Failed checks', none: 'Why', unverifiable: 'Why it could not be checked' }[m.state] || 'Problems'),
      el(doc, 'ul', {}, ...m.failed.map((r) => resultNode(doc, r)))));
  }
  if (m.changes.length) {
    root.appendChild(el(doc, 'section', { class: 'changes' },
      el(doc, 'h2', {}, 'Changes on the way'),
      ...m.changes.map((c) => changeNode(doc, c))));
  }
  const notes = m.results.filter((r) => r.severity !== 'error');
  if (notes.length) {
    root.appendChild(el(doc, 'section', { class: 'notes' },
      el(doc, 'h2', {}, 'Notes'),
      el(doc, 'ul', {}, ...notes.map((r) => resultNode(doc, r)))));
  }
  if (m.resources.length) {
    root.appendChild(el(doc, 'section', { class: 'resources' },
      el(doc, 'h2', {}, 'Scripts and styles'),
      el(doc, 'ul', {}, ...m.resources.map((r) => el(doc, 'li', { class: `res state-${r.state}` },
        el(doc, 'span', { class: 'res-state' }, r.label), ' ', el(doc, 'span', { class: 'res-url' }, r.url),
        r.firstProblem ? el(doc, 'div', { class: 'explanation' }, `${r.firstProblem.code}: ${r.firstProblem.explanation || ''}`) : null)))));
  }
  return root;
}
