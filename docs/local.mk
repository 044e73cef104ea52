# docs
dist_man_MANS += docs/patient.1
dist_man_MANS += docs/patient-formats.5
