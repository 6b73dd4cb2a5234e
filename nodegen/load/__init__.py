"""Stage 1, reading: YAML with positions (yamlio), the manifest wire models (model), Manifests (manifests)."""
