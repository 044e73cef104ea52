# verifier
