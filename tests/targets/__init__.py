"""Tests of nodegen/targets/: each output target, its files and the real tools' verdicts."""
