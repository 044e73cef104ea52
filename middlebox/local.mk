# middlebox: the reference middleboxes (filter CLI, c-icap service) and rules.
bin_PROGRAMS += middlebox/patient-mbox
middlebox_patient_mbox_SOURCES = middlebox/patient-mbox.c
middlebox_patient_mbox_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS)
middlebox_patient_mbox_LDADD = $(PT_LIBS)
EXTRA_DIST += middlebox/rules
