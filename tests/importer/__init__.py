"""Tests of nodegen/importer/ and `nodegen import`: real hand-written files in, manifests and a gap report out."""
