# verifier: patient-verify (fetch, verify, report; native messaging host).
bin_PROGRAMS += verifier/patient-verify
verifier_patient_verify_SOURCES = verifier/patient-verify.c
verifier_patient_verify_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS) $(CLI_CFLAGS)
verifier_patient_verify_LDADD = $(CLI_LIBS)
dist_man_MANS += docs/patient-verify.1
