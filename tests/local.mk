# Unit tests (Check) link the core statically so they reach internal helpers.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(SODIUM_CFLAGS) $(CJSON_CFLAGS) \
	-DTEST_SRCDIR='"$(abs_top_srcdir)/tests"' -DTOP_BUILDDIR='"$(abs_top_builddir)"'
TEST_LIBS = $(PT_CORE) $(CHECK_LIBS)
# Temp folders, fixtures, slurp: shared by every Check file.
TEST_UTIL = tests/testutil.h tests/testutil.c
# patient-publish keeps its incremental state in the user's cache: tests
# keep theirs in the build tree, not in the home of whoever runs them.
# Check's 4 s default per test case is a hang guard; under the sanitizers on
# a busy 2-core machine a healthy case can take longer, so the guard is 60 s
# unless the caller sets CK_DEFAULT_TIMEOUT. No test depends on timing.
AM_TESTS_ENVIRONMENT = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)'; export top_srcdir top_builddir; XDG_CACHE_HOME='$(abs_top_builddir)/tests/cache'; export XDG_CACHE_HOME; \
	: "$${CK_DEFAULT_TIMEOUT:=60}"; export CK_DEFAULT_TIMEOUT;

check_PROGRAMS += tests/check_core
tests_check_core_SOURCES = tests/check_core.c $(TEST_UTIL)
tests_check_core_CFLAGS = $(TEST_CFLAGS)
tests_check_core_LDADD = $(TEST_LIBS) -lpthread
TESTS += tests/check_core

# core: keys, minisign signatures, JWS
check_PROGRAMS += tests/check_key tests/check_jws tests/jws_tool
tests_check_key_SOURCES = tests/check_key.c $(TEST_UTIL)
tests_check_key_CFLAGS = $(TEST_CFLAGS)
tests_check_key_LDADD = $(TEST_LIBS)
tests_check_jws_SOURCES = tests/check_jws.c $(TEST_UTIL)
tests_check_jws_CFLAGS = $(TEST_CFLAGS)
tests_check_jws_LDADD = $(TEST_LIBS)
# Interop helper: public API only, links the shared library like the tools.
tests_jws_tool_SOURCES = tests/jws_tool.c
tests_jws_tool_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS)
tests_jws_tool_LDADD = $(PT_LIBS)
TESTS += tests/check_key tests/check_jws tests/cli_patient.sh tests/interop_minisign.sh tests/interop_jose.sh
dist_noinst_SCRIPTS += tests/prelude.sh tests/cli_patient.sh tests/interop_minisign.sh tests/interop_jose.sh tests/interop_jose.py
EXTRA_DIST += tests/data/key_test.pub tests/data/key_test.key tests/data/key_test.txt \
	tests/data/key_test.txt.minisig tests/data/jws_test.json tests/data/jws_test.jws

check_PROGRAMS += tests/check_rules
tests_check_rules_SOURCES = tests/check_rules.c $(TEST_UTIL)
tests_check_rules_CFLAGS = $(TEST_CFLAGS)
tests_check_rules_LDADD = $(TEST_LIBS)
TESTS += tests/check_rules
EXTRA_DIST += tests/data/rules_page.html tests/data/rules_bad_regex.json \
	tests/data/rules_bad_json.json tests/data/rules_unknown_action.json \
	tests/data/rules_dup_id.json middlebox/rules/example.json middlebox/rules/trackers-only.json

# change descriptors, edits, gzip
check_PROGRAMS += tests/check_change
tests_check_change_SOURCES = tests/check_change.c $(TEST_UTIL)
tests_check_change_CFLAGS = $(TEST_CFLAGS)
tests_check_change_LDADD = $(TEST_LIBS) -lpthread
TESTS += tests/check_change

# policy, fetch, disclosure
check_PROGRAMS += tests/check_policy
tests_check_policy_SOURCES = tests/check_policy.c $(TEST_UTIL)
tests_check_policy_CFLAGS = $(TEST_CFLAGS)
tests_check_policy_LDADD = $(TEST_LIBS)
TESTS += tests/check_policy
check_PROGRAMS += tests/check_fetch tests/check_disclosure
tests_check_fetch_SOURCES = tests/check_fetch.c $(TEST_UTIL)
tests_check_fetch_CFLAGS = $(TEST_CFLAGS)
tests_check_fetch_LDADD = $(TEST_LIBS)
TESTS += tests/check_fetch
tests_check_disclosure_SOURCES = tests/check_disclosure.c $(TEST_UTIL)
tests_check_disclosure_CFLAGS = $(TEST_CFLAGS)
tests_check_disclosure_LDADD = $(TEST_LIBS)
TESTS += tests/check_disclosure

check_PROGRAMS += tests/check_log
tests_check_log_SOURCES = tests/check_log.c $(TEST_UTIL)
tests_check_log_CFLAGS = $(TEST_CFLAGS)
tests_check_log_LDADD = $(TEST_LIBS)
TESTS += tests/check_log

check_PROGRAMS += tests/check_inspect
tests_check_inspect_SOURCES = tests/check_inspect.c $(TEST_UTIL)
tests_check_inspect_CFLAGS = $(TEST_CFLAGS)
tests_check_inspect_LDADD = $(TEST_LIBS)
TESTS += tests/check_inspect

# golden descriptor chain and audit log, with forged twins
check_PROGRAMS += tests/check_golden
tests_check_golden_SOURCES = tests/check_golden.c $(TEST_UTIL)
tests_check_golden_CFLAGS = $(TEST_CFLAGS)
tests_check_golden_LDADD = $(TEST_LIBS)
TESTS += tests/check_golden
EXTRA_DIST += tests/data/golden

# manifests, Patient-Origin, patient-publish
check_PROGRAMS += tests/check_manifest
tests_check_manifest_SOURCES = tests/check_manifest.c $(TEST_UTIL)
tests_check_manifest_CFLAGS = $(TEST_CFLAGS)
tests_check_manifest_LDADD = $(TEST_LIBS)
TESTS += tests/check_manifest tests/publish.sh tests/publish_incremental.sh
EXTRA_DIST += tests/publish.sh tests/publish_incremental.sh tests/data/manifest_golden.json \
	tests/data/manifest_golden.json.minisig tests/data/manifest_noroots.json tests/data/manifest_noroots.json.minisig tests/data/manifest_key.pub tests/data/manifest_key.key
check_PROGRAMS += tests/log_writer
tests_log_writer_SOURCES = tests/log_writer.c
tests_log_writer_CFLAGS = $(TEST_CFLAGS)
tests_log_writer_LDADD = $(TEST_LIBS)
TESTS += tests/log_crash.sh
EXTRA_DIST += tests/log_crash.sh

# verifier: verification core, bundles; native messaging
check_PROGRAMS += tests/check_confine
tests_check_confine_SOURCES = tests/check_confine.c $(TEST_UTIL)
tests_check_confine_CFLAGS = $(TEST_CFLAGS)
tests_check_confine_LDADD = $(TEST_LIBS)
TESTS += tests/check_confine

check_PROGRAMS += tests/check_verify
tests_check_verify_SOURCES = tests/check_verify.c $(TEST_UTIL)
tests_check_verify_CFLAGS = $(TEST_CFLAGS)
tests_check_verify_LDADD = $(TEST_LIBS)
TESTS += tests/check_verify

check_PROGRAMS += tests/check_native
tests_check_native_SOURCES = tests/check_native.c $(TEST_UTIL)
tests_check_native_CFLAGS = $(TEST_CFLAGS)
tests_check_native_LDADD = $(TEST_LIBS)
TESTS += tests/check_native
TESTS += tests/verify_cli.sh
dist_noinst_SCRIPTS += tests/verify_cli.sh tests/verify_cli_server.py

# srv_patient on the real stack: nginx + Squid + c-icap
check_PROGRAMS += tests/stack_logcheck tests/check_mbox
tests_stack_logcheck_SOURCES = tests/stack_logcheck.c
tests_stack_logcheck_CFLAGS = $(TEST_CFLAGS)
tests_stack_logcheck_LDADD = $(TEST_LIBS)
tests_check_mbox_SOURCES = tests/check_mbox.c $(TEST_UTIL)
tests_check_mbox_CFLAGS = $(TEST_CFLAGS)
tests_check_mbox_LDADD = $(TEST_LIBS)
TESTS += tests/check_mbox tests/stack_e2e.sh tests/stack_load.sh tests/stack_large.sh tests/stack_limits.sh tests/stack_prune.sh tests/stack_tls.sh tests/stack_shards.sh
dist_noinst_SCRIPTS += tests/stack_prelude.sh tests/stack_e2e.sh tests/stack_load.sh tests/stack_large.sh tests/stack_limits.sh tests/stack_prune.sh tests/stack_tls.sh tests/stack_shards.sh tests/shard_path.py

# patient audit / patient inspect
check_PROGRAMS += tests/check_audit
tests_check_audit_SOURCES = tests/check_audit.c $(TEST_UTIL)
tests_check_audit_CFLAGS = $(TEST_CFLAGS)
tests_check_audit_LDADD = $(TEST_LIBS)
TESTS += tests/check_audit tests/cli_audit.sh tests/cli_inspect.sh tests/cli_mbox.sh
dist_noinst_SCRIPTS += tests/cli_audit.sh tests/cli_inspect.sh tests/cli_mbox.sh
EXTRA_DIST += tests/data/inspect_bundle.json tests/data/inspect_report.json

# The README's main command, end to end (real nginx, Squid, c-icap, srv_patient).
TESTS += tests/demo.sh
EXTRA_DIST += tests/demo.sh

# Whole fixture folders (nothing is generated there; tests copy them to mktemp dirs).
EXTRA_DIST += tests/data tests/site

# hardening: valgrind over the tools, kill -9 of
# patient-publish, secrets never in any output, resource limits.
# tests/sanitize.sh (ASan/UBSan build) runs from scripts/test, not here.
TESTS += tests/valgrind.sh tests/crash_publish.sh tests/secrets.sh tests/limits.sh
dist_noinst_SCRIPTS += tests/valgrind.sh tests/crash_publish.sh tests/secrets.sh tests/limits.sh tests/sanitize.sh
EXTRA_DIST += tests/lsan.supp

# undo into reused buffers and in place (lib/edit.c internals)
check_PROGRAMS += tests/check_undo
tests_check_undo_SOURCES = tests/check_undo.c $(TEST_UTIL)
tests_check_undo_CFLAGS = $(TEST_CFLAGS)
tests_check_undo_LDADD = $(TEST_LIBS)
TESTS += tests/check_undo

# transparency log: consistency proofs, signed notes, tiles, publishing,
# monitor
check_PROGRAMS += tests/check_tlog tests/tlog_tool
tests_check_tlog_SOURCES = tests/check_tlog.c $(TEST_UTIL)
tests_check_tlog_CFLAGS = $(TEST_CFLAGS)
tests_check_tlog_LDADD = $(TEST_LIBS)
tests_tlog_tool_SOURCES = tests/tlog_tool.c
tests_tlog_tool_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS)
tests_tlog_tool_LDADD = $(PT_LIBS)
TESTS += tests/check_tlog tests/tlog_go.sh tests/tlog_monitor.sh tests/stack_tlog.sh
dist_noinst_SCRIPTS += tests/tlog_go.sh tests/tlog_monitor.sh tests/stack_tlog.sh
EXTRA_DIST += tests/go/tlog_interop.go
