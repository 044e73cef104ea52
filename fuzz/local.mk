# fuzz: libFuzzer harnesses, built only on request with `make fuzz` (clang
# with -fsanitize=fuzzer; Debian: clang + libclang-rt-dev). Each harness
# fuzz/NAME.c is compiled together with all libpatient sources (so the
# sanitizers see the library too) into the build dir as fuzz/NAME.
# To add one: FUZZ_TARGETS += fuzz/NAME, a seed corpus in fuzz/corpus/NAME/.
# Run: ./fuzz/fuzz_rules -max_total_time=120 fuzz/corpus-rules $(srcdir)/fuzz/corpus/rules
CLANG = clang
FUZZ_TARGETS =
FUZZ_TARGETS += fuzz/fuzz_rules
FUZZ_CFLAGS = -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir)/include -I$(top_srcdir)/lib -I$(top_builddir) \
	$(SODIUM_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) $(CRYPTO_CFLAGS) $(ZLIB_CFLAGS)
FUZZ_LIBS = $(SODIUM_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(CRYPTO_LIBS) $(ZLIB_LIBS) -lpthread

fuzz: config.h
	@$(MKDIR_P) fuzz
	@set -e; srcs=''; \
	for f in $(lib_libpatient_core_la_SOURCES); do \
	  case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; \
	done; \
	for t in $(FUZZ_TARGETS); do \
	  echo "  FUZZ     $$t"; \
	  $(CLANG) $(FUZZ_CFLAGS) $(top_srcdir)/$$t.c $$srcs $(FUZZ_LIBS) -o $$t; \
	done
.PHONY: fuzz

CLEANFILES += $(FUZZ_TARGETS)
EXTRA_DIST += fuzz/fuzz_rules.c fuzz/corpus
