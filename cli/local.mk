# cli: the `patient` tool. Links the shared libpatient, so only the public
# (PATIENT_EXPORT) API is available here.
bin_PROGRAMS += cli/patient
cli_patient_SOURCES = \
	cli/patient.c cli/cmd.h \
	cli/cmd_policy.c cli/cmd_disclose.c \
	cli/cmd_audit.c cli/cmd_audit_tlog.c cli/cmd_inspect.c \
	cli/cmd_keygen.c
cli_patient_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS) $(CLI_CFLAGS)
cli_patient_LDADD = $(CLI_LIBS)
