"""Shipped ONNX weights, installed as the ``vstream.models`` package (see pyproject.toml)."""
