"""Shipped YAML presets, installed as the ``vstream.configs`` package (see pyproject.toml)."""
