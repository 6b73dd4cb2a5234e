"""Tests of nodegen/load/: YAML with positions, the strict schema, the manifest files."""
