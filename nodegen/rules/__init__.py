"""Stage 2, the standard's rules over loaded manifests (checks), the port ledger (ports), their ids (catalogue)."""
