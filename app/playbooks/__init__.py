"""A case's playbook over HTTP: read it with each step's status, complete or skip the manual step the
case waits on, and recalculate the choice of playbook against the packs active now."""
