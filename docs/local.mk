# docs
dist_man_MANS += docs/patient.1
dist_man_MANS += docs/patient-formats.5
# the c-icap service module (middlebox/srv_patient.c)
dist_man_MANS += docs/srv_patient.8

# Installed documentation ($(docdir), i.e. share/doc/patient). The format
# pages go to a format/ subfolder and the screenshots to img/ so that the
# relative links in FORMAT.md and PLUGIN.md keep working once installed.
dist_doc_DATA = README.md LICENSE docs/FORMAT.md docs/MIDDLEBOX.md docs/PLUGIN.md \
	docs/BENCHMARKS.md
docformatdir = $(docdir)/format
dist_docformat_DATA = docs/format/change.md docs/format/disclosure.md \
	docs/format/keys.md docs/format/log.md docs/format/manifest.md \
	docs/format/policy.md docs/format/report.md docs/format/rules.md
docimgdir = $(docdir)/img
dist_docimg_DATA = docs/img/popup-verified.png docs/img/popup-modified.png \
	docs/img/popup-invalid.png docs/img/popup-unverifiable.png docs/img/popup-none.png \
	docs/img/popup-error.png docs/img/popup-pending.png docs/img/popup-untrusted.png
EXTRA_DIST += docs/notes-cicap.md
# hardening: threat model and what was tested how
dist_doc_DATA += docs/SECURITY.md docs/QUALITY.md
