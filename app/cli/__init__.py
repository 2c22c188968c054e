"""The ``exops`` command line."""
