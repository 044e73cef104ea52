/* The verbs of the `patient` tool. Each takes argv with argv[0] = the verb
 * name, parses its own options (getopt_long), prints its usage on --help
 * (stdout, exit 0) and returns the process exit code: 0 ok, 1 verification
 * failed, 2 usage or local I/O error.
 *
 * To add a verb: one declaration here and one line in the table in
 * cli/patient.c. */
#ifndef PATIENT_CLI_CMD_H
#define PATIENT_CLI_CMD_H

int cmd_keygen(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* The transparency-log verbs of patient audit (consistency,
 * verify-consistency, publish, note-key, monitor, included); argv[1] is
 * the audit command. */
int cmd_audit_tlog(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_disclose(int argc, char **argv);

#endif
