"""Tests of nodegen/commands/: each subcommand's exit codes and exact output."""
