"""How tools and notifiers get a secret: from a lookup the app scoped to one owner before the run.

The lookup is a callable ``name -> value`` built by the app for one tenant (``app.secrets``): it
answers only from the namespaces the owner of the pack that names the secret may use, and it
raises ``SecretMissing`` for anything else. Nothing below the app sees the whole secret map, so no
code path here can read another tenant's (or the platform's) secret by naming it.
"""

from __future__ import annotations

from collections.abc import Callable


class SecretMissing(LookupError):
    """A reference that does not resolve in the namespace searched. The message names the
    reference and the namespace, never another name or any value, so it is safe to record."""

    def __init__(self, ref: str, namespace: str) -> None:
        super().__init__(f"secret {ref!r} is not set in {namespace}")
        self.ref = ref
        self.namespace = namespace


SecretLookup = Callable[[str], str]
"""``name -> value``; raises ``SecretMissing`` when the name does not resolve in its scope."""
