"""Adapters that run simulsa bundles inside other projects' evaluation and serving tools (optional extras)."""
