"""The ``breast-ai`` command line (the only layer that prints and shows progress bars)."""
