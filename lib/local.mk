# libpatient: all logic lives here. Objects are built once into a
# convenience library (tests link it statically to reach internal helpers),
# then exported as the shared libpatient with only PATIENT_EXPORT symbols.
noinst_LTLIBRARIES = lib/libpatient_core.la
lib_libpatient_core_la_SOURCES = \
	lib/util.h lib/util.c lib/file.c lib/time_int.h lib/time.c \
	lib/error.c \
	lib/hash_int.h lib/hash.c \
	lib/key_int.h lib/key.c \
	lib/merkle.h lib/merkle.c lib/sha256_pair.h lib/sha256_pair.c lib/chunk.h lib/chunk.c \
	lib/log_int.h lib/log_read.c lib/log_scan.c lib/log_write.c lib/log_verify.c lib/log_proof.c lib/log_report.c lib/log_tally.c \
	lib/tlog_int.h lib/log_consist.c lib/log_evidence.c lib/log_tiles.c lib/note.c lib/tlog_client.c lib/tlog_index.c \
	lib/manifest_int.h lib/manifest_build.c lib/manifest_parse.c lib/manifest_publish.c lib/manifest_shard.c \
	lib/mediatype.c lib/origin.c \
	lib/url_int.h lib/url.c lib/tls.c \
	lib/policy_int.h lib/policy.c lib/fetch_int.h lib/fetch.c lib/disclosure_int.h lib/disclosure.c \
	lib/change_int.h lib/change.c lib/hash_bg.h lib/hash_bg.c lib/edit.c lib/pieces.h lib/pieces.c lib/gzip.c \
	lib/rules.c \
	lib/report_int.h lib/report.c lib/verify_int.h lib/verify.c lib/rollback.c lib/verify_confine.c lib/verify_stream.h lib/verify_stream.c lib/verify_net.c lib/bundle.c lib/native.c lib/mbox.c lib/mbox_http.c lib/mbox_ref.c \
	lib/jws_int.h lib/jws.c \
	lib/inspect_int.h lib/inspect.c lib/inspect_key.c lib/inspect_jws.c lib/inspect_log.c lib/inspect_doc.c
lib_libpatient_core_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(SODIUM_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS) $(CRYPTO_CFLAGS) $(SSL_CFLAGS) $(ZLIB_CFLAGS) $(PCRE2_CFLAGS)
lib_libpatient_core_la_LIBADD = $(SODIUM_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(CRYPTO_LIBS) $(SSL_LIBS) $(ZLIB_LIBS) $(PCRE2_LIBS)

lib_LTLIBRARIES += lib/libpatient.la
lib_libpatient_la_SOURCES =
lib_libpatient_la_LIBADD = lib/libpatient_core.la
lib_libpatient_la_LDFLAGS = -version-info 0:0:0 -no-undefined

pkginclude_HEADERS += \
	include/patient/patient.h \
	include/patient/error.h \
	include/patient/hash.h \
	include/patient/key.h \
	include/patient/log.h include/patient/tlog.h \
	include/patient/manifest.h \
	include/patient/policy.h include/patient/fetch.h include/patient/disclosure.h \
	include/patient/change.h include/patient/gzip.h \
	include/patient/rules.h \
	include/patient/bundle.h \
	include/patient/verify.h include/patient/native.h include/patient/mbox.h include/patient/time.h \
	include/patient/jws.h include/patient/url.h include/patient/tls.h include/patient/inspect.h \
	include/patient/file.h

# What tools link with.
PT_LIBS = lib/libpatient.la $(SODIUM_LIBS) $(CJSON_LIBS)
PT_CORE = lib/libpatient_core.la
PT_DEP_CFLAGS = $(SODIUM_CFLAGS) $(CJSON_CFLAGS) $(CURL_CFLAGS)
