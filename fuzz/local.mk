# fuzz: libFuzzer harnesses, built only on request with `make fuzz` (clang
# with -fsanitize=fuzzer; Debian: clang + libclang-rt-dev). Each harness
# fuzz/NAME.c is linked with all libpatient sources, compiled once with the
# same flags into fuzz/lib/ (so the sanitizers see the library too), into
# the build dir as fuzz/NAME; only what changed is rebuilt.
# To add one: FUZZ_TARGETS += fuzz/NAME, a seed corpus in fuzz/corpus/NAME/.
# Run: ./fuzz/fuzz_rules -max_total_time=120 fuzz/corpus-rules $(srcdir)/fuzz/corpus/rules
CLANG = clang
FUZZ_TARGETS =
FUZZ_TARGETS += fuzz/fuzz_rules
FUZZ_TARGETS += fuzz/fuzz_verify fuzz/fuzz_native
# hardening: one harness per parser; fuzz/common.h holds the test key
FUZZ_TARGETS += fuzz/fuzz_pubkey fuzz/fuzz_seckey fuzz/fuzz_minisig fuzz/fuzz_jws \
	fuzz/fuzz_manifest fuzz/fuzz_change fuzz/fuzz_origin fuzz/fuzz_disclosure \
	fuzz/fuzz_policy fuzz/fuzz_log fuzz/fuzz_gzip fuzz/fuzz_edits
# the strict JSON reader and its integer literals
FUZZ_TARGETS += fuzz/fuzz_json
# chunk roots: the "chunks" member, holes and the confinement check
FUZZ_TARGETS += fuzz/fuzz_confine
# transparency log: checkpoint notes; state file, entry bundles, proofs, tiles
FUZZ_TARGETS += fuzz/fuzz_note fuzz/fuzz_tlog
# inspection: every artefact kind, JSON documents through their readers
FUZZ_TARGETS += fuzz/fuzz_inspect
FUZZ_CFLAGS = -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(top_srcdir)/include -I$(top_srcdir)/lib -I$(top_builddir) \
	$(SODIUM_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) $(CRYPTO_CFLAGS) $(SSL_CFLAGS) $(ZLIB_CFLAGS) $(PCRE2_CFLAGS)
FUZZ_LIBS = $(SODIUM_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(CRYPTO_LIBS) $(SSL_LIBS) $(ZLIB_LIBS) $(PCRE2_LIBS) -lpthread

fuzz: config.h
	@$(MKDIR_P) fuzz/lib
	@set -e; objs=''; \
	hdr=`ls -t $(top_srcdir)/lib/*.h $(top_srcdir)/include/patient/*.h config.h | head -1`; \
	for f in $(lib_libpatient_core_la_SOURCES); do \
	  case $$f in *.c) ;; *) continue;; esac; \
	  o=fuzz/lib/`basename $$f .c`.o; objs="$$objs $$o"; \
	  if [ ! -f $$o ] || [ $(top_srcdir)/$$f -nt $$o ] || [ $$hdr -nt $$o ]; then \
	    echo "  FUZZCC   $$f"; $(CLANG) $(FUZZ_CFLAGS) -c $(top_srcdir)/$$f -o $$o; \
	  fi; \
	done; \
	for t in $(FUZZ_TARGETS); do \
	  if [ -f $$t ] && [ -z "`find $(top_srcdir)/$$t.c $(top_srcdir)/fuzz/*.h $$objs -newer $$t`" ]; then \
	    continue; \
	  fi; \
	  echo "  FUZZ     $$t"; \
	  $(CLANG) $(FUZZ_CFLAGS) $(top_srcdir)/$$t.c $$objs $(FUZZ_LIBS) -o $$t; \
	done
.PHONY: fuzz

CLEANFILES += $(FUZZ_TARGETS) fuzz/lib/*.o
EXTRA_DIST += fuzz/fuzz_rules.c fuzz/corpus
EXTRA_DIST += fuzz/fuzz_verify.c fuzz/fuzz_native.c
EXTRA_DIST += $(FUZZ_TARGETS:=.c) fuzz/common.h fuzz/regressions scripts/fuzz
