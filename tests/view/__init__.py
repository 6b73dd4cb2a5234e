"""Tests of the resolved fleet (nodegen/view/, nodegen/topology.py): who runs what, cross-node edges."""
