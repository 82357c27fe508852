"""The edgeq version, written into every artifact's metadata and report."""
__version__ = "0.1.0"
