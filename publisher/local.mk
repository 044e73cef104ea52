# publisher
bin_PROGRAMS += publisher/patient-publish
publisher_patient_publish_SOURCES = publisher/patient-publish.c
publisher_patient_publish_CFLAGS = $(AM_CFLAGS) $(PT_DEP_CFLAGS) $(CLI_CFLAGS)
publisher_patient_publish_LDADD = $(CLI_LIBS)
dist_man_MANS += docs/patient-publish.1
