import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drawIcon } from '../tools/make-icons.js';
import { STATE_STYLE, ICON_SIZES } from '../extension/state.js';
import { HERE } from './helpers.js';

test('committed icons are exactly what make-icons.js draws', () => {
  for (const [state, style] of Object.entries(STATE_STYLE)) {
    for (const size of ICON_SIZES) {
      const file = readFileSync(join(HERE, '..', 'extension', 'icons', `${state}-${size}.png`));
      assert.ok(file.subarray(0, 8).equals(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')));
      assert.equal(file.readUInt32BE(16), size);
      assert.ok(drawIcon(size, style).equals(file), `${state}-${size}.png is stale: run node plugin/tools/make-icons.js`);
    }
  }
});

test('manifest: minimal permissions, strict CSP, pinned key, no remote code', () => {
  const m = JSON.parse(readFileSync(join(HERE, '..', 'extension', 'manifest.json'), 'utf8'));
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.permissions.sort(), ['nativeMessaging', 'storage', 'webNavigation']);
  assert.equal(m.host_permissions, undefined);
  assert.equal(m.content_scripts, undefined);
  assert.match(m.content_security_policy.extension_pages, /script-src 'self';/);
  assert.doesNotMatch(m.content_security_policy.extension_pages, /unsafe|http|\*/);
  assert.match(m.key, /^MIIB/);
  assert.ok(m.browser_specific_settings.gecko.id);
  // the debugger (exact bytes) and scripting are opt-in, never granted at install
  assert.deepEqual(m.optional_permissions.sort(), ['debugger', 'scripting']);
});

test('Firefox manifest: the StreamFilter permissions, event page, same CSP and id', () => {
  const m = JSON.parse(readFileSync(join(HERE, '..', 'extension', 'manifest.firefox.json'), 'utf8'));
  const c = JSON.parse(readFileSync(join(HERE, '..', 'extension', 'manifest.json'), 'utf8'));
  assert.equal(m.manifest_version, 3);
  assert.deepEqual(m.permissions.sort(), ['nativeMessaging', 'storage', 'webNavigation', 'webRequest', 'webRequestBlocking', 'webRequestFilterResponse']);
  assert.deepEqual(m.host_permissions, ['http://*/*', 'https://*/*']);
  assert.deepEqual(m.background, { scripts: ['background.js'], type: 'module' });
  assert.equal(m.content_scripts, undefined);
  assert.equal(m.content_security_policy.extension_pages, c.content_security_policy.extension_pages);
  assert.equal(m.browser_specific_settings.gecko.id, c.browser_specific_settings.gecko.id);
  assert.equal(m.version, c.version);
  assert.equal(m.incognito, 'not_allowed');
});
