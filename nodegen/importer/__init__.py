"""`nodegen import`: manifests and a gap report from the hand-written files a team already runs."""
