# Unit tests (Check) link the core statically so they reach internal helpers.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(SODIUM_CFLAGS) $(CJSON_CFLAGS) \
	-DTEST_SRCDIR='"$(abs_top_srcdir)/tests"' -DTOP_BUILDDIR='"$(abs_top_builddir)"'
TEST_LIBS = $(PT_CORE) $(CHECK_LIBS)
AM_TESTS_ENVIRONMENT = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)'; export top_srcdir top_builddir;

check_PROGRAMS += tests/check_core
tests_check_core_SOURCES = tests/check_core.c
tests_check_core_CFLAGS = $(TEST_CFLAGS)
tests_check_core_LDADD = $(TEST_LIBS)
TESTS += tests/check_core
