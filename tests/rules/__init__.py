"""Tests of nodegen/rules/: every rule with exact located lines, the port ledger."""
