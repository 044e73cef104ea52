# plugin: the browser extension, its native host installer and its tests.
# Listed file by file (not the whole folder) so that plugin/test/node_modules,
# installed for the browser test, never ends up in a tarball.
EXTRA_DIST += plugin/extension plugin/hosts plugin/tools plugin/test/fixtures \
	plugin/install.sh plugin/patient-native-host plugin/local.mk plugin/package.json \
	plugin/test/run.sh plugin/test/helpers.js plugin/test/state.test.js \
	plugin/test/render.test.js plugin/test/view.test.js plugin/test/native.test.js \
	plugin/test/icons.test.js plugin/test/capture.test.js plugin/test/package.json \
	plugin/test/package-lock.json plugin/test/e2e.js plugin/test/e2e-firefox.js \
	plugin/test/standin-host.py plugin/test/standin-e2e.sh tests/split_server.py \
	tests/plugin_tls.sh \
	plugin/.gitignore docs/PLUGIN.md docs/img/popup-verified.png docs/img/popup-modified.png \
	docs/img/popup-invalid.png docs/img/popup-unverifiable.png docs/img/popup-none.png \
	docs/img/popup-error.png docs/img/popup-pending.png docs/img/popup-untrusted.png \
	docs/img/firefox-popup-verified.png docs/img/firefox-popup-modified.png \
	docs/img/firefox-popup-split.png docs/img/firefox-interstitial.png \
	docs/img/popup-exact-split.png

# Unit tests of the extension (node --test; skip, 77, without node >= 18), and
# the browser tests: real Chromium / Firefox ESR + patient-verify --native-host
# + the loopback stack (skip, 77, without the browser, node, playwright-core /
# puppeteer-core or the servers).
TESTS += plugin/test/run.sh tests/plugin_e2e.sh tests/plugin_firefox.sh
EXTRA_DIST += tests/plugin_e2e.sh tests/plugin_firefox.sh

# make install-plugin [PLUGIN_SCOPE=--system] [PLUGIN_BROWSER=firefox|chrome|all]
PLUGIN_SCOPE = --user
PLUGIN_BROWSER = chromium
install-plugin:
	$(SHELL) $(top_srcdir)/plugin/install.sh $(PLUGIN_SCOPE) --browser $(PLUGIN_BROWSER) \
	  --prefix "$(prefix)" --host-path "$(bindir)/patient-verify" --destdir "$(DESTDIR)"
uninstall-plugin:
	$(SHELL) $(top_srcdir)/plugin/install.sh $(PLUGIN_SCOPE) --browser $(PLUGIN_BROWSER) \
	  --prefix "$(prefix)" --uninstall --destdir "$(DESTDIR)"
.PHONY: install-plugin uninstall-plugin
