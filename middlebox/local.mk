# middlebox: the reference middleboxes (filter CLI, c-icap service) and rules.
bin_PROGRAMS += middlebox/patient-mbox
middlebox_patient_mbox_SOURCES = middlebox/patient-mbox.c
middlebox_patient_mbox_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS) $(CLI_CFLAGS)
middlebox_patient_mbox_LDADD = $(CLI_LIBS)
EXTRA_DIST += middlebox/rules

# srv_patient: the c-icap RESPMOD service module (docs/MIDDLEBOX.md). It links
# the core convenience library statically, so the .so depends only on system
# libraries. Installed under $(libdir)/c_icap so a non-root `make install` or
# `make distcheck` stays inside the prefix; Debian's c-icap looks in
# `c-icap-config --modulesdir` (configure --prefix=/usr
# --libdir=/usr/lib/x86_64-linux-gnu gives exactly that directory), or name the
# module by absolute path in c-icap.conf's Service line, or override:
#   make install icapmoddir="$(c-icap-config --modulesdir)"
if WITH_ICAP
icapmoddir = $(libdir)/c_icap
icapmod_LTLIBRARIES = middlebox/srv_patient.la
middlebox_srv_patient_la_SOURCES = middlebox/srv_patient.c
middlebox_srv_patient_la_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS) $(ICAP_CFLAGS)
middlebox_srv_patient_la_LDFLAGS = -module -avoid-version -shared -no-undefined \
	-export-symbols-regex '^service$$'
middlebox_srv_patient_la_LIBADD = $(PT_CORE) $(SODIUM_LIBS) $(CJSON_LIBS) $(CURL_LIBS) \
	$(CRYPTO_LIBS) $(SSL_LIBS) $(ZLIB_LIBS) $(PCRE2_LIBS) $(ICAP_LIBS) -lpthread
endif
dist_man_MANS += docs/patient-mbox.1
