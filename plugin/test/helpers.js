// helpers.js — shared by the unit tests: fixtures and a fake DOM.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const fixture = (name) => JSON.parse(readFileSync(join(HERE, 'fixtures', `${name}.json`), 'utf8'));

// A minimal document: elements and text nodes only.  Any attempt to parse
// markup (innerHTML, outerHTML, insertAdjacentHTML, document.write) throws,
// and event-handler / style / srcdoc attributes are refused, so a test fails
// if view.js ever lets a string become HTML.
class Text {
  constructor(data) { this.nodeType = 3; this.data = data; }
  get textContent() { return this.data; }
}
class Element {
  constructor(tag) { this.nodeType = 1; this.tagName = tag.toUpperCase(); this.attributes = {}; this.childNodes = []; this.className = ''; }
  appendChild(n) {
    if (!(n instanceof Element || n instanceof Text)) throw new Error(`appendChild of a non-node: ${typeof n}`);
    this.childNodes.push(n);
    return n;
  }
  setAttribute(k, v) {
    if (/^on/i.test(k) || ['style', 'srcdoc'].includes(k.toLowerCase())) throw new Error(`refused attribute ${k}`);
    this.attributes[k] = String(v);
  }
  getAttribute(k) { return k in this.attributes ? this.attributes[k] : null; }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(''); }
  set textContent(v) { this.childNodes = [new Text(String(v))]; }
  set innerHTML(v) { throw new Error('innerHTML used'); }
  get innerHTML() { throw new Error('innerHTML used'); }
  set outerHTML(v) { throw new Error('outerHTML used'); }
  insertAdjacentHTML() { throw new Error('insertAdjacentHTML used'); }
  *walk() { yield this; for (const c of this.childNodes) if (c instanceof Element) yield* c.walk(); }
  find(pred) { for (const e of this.walk()) if (pred(e)) return e; return null; }
  findAll(pred) { return [...this.walk()].filter(pred); }
  hasClass(c) { return this.className.split(/\s+/).includes(c); }
}
export const fakeDocument = () => ({
  createElement: (t) => new Element(t),
  createTextNode: (d) => new Text(d),
  write() { throw new Error('document.write used'); },
});
