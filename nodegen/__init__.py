"""nodegen: the fleet's manifests in, every node's config files out."""

__version__ = "0.1.0"
