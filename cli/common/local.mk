# cli/common: what every command-line tool needs (patient, patient-verify,
# patient-publish, patient-mbox): messages, usage and exit codes, capped
# reads, atomic writes, passwords and secret keys. A libtool convenience
# library linked into each tool, never installed; like the tools it sees
# only the public libpatient API.
noinst_LTLIBRARIES += cli/common/libclicommon.la
cli_common_libclicommon_la_SOURCES = \
	cli/common/cli.h cli/common/msg.c cli/common/out.c \
	cli/common/pins.c cli/common/password.c
cli_common_libclicommon_la_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS)

# What a tool adds to its CFLAGS and LDADD.
CLI_CFLAGS = -I$(top_srcdir)/cli/common
CLI_LIBS = cli/common/libclicommon.la $(PT_LIBS)
