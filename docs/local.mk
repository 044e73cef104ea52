# docs
dist_man_MANS += docs/patient.1
