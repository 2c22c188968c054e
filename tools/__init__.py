"""Tools: rendering step parameters, the executor interface, dry-run (and later live) execution."""
