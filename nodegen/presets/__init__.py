"""Fleet catalogs `nodegen init` starts a workspace from (daarion.yaml is a copy of the shipped nodes/fleet.yaml)."""
