"""A secret lookup over a plain dict for tests below the app (the app scopes its own, see
app/secrets.py); it reads the dict on every call, so a test may change it between calls."""

from __future__ import annotations

from tools.secrets import SecretLookup, SecretMissing

NAMESPACE = "the test's secrets"


def lookup(table: dict[str, str], namespace: str = NAMESPACE) -> SecretLookup:
    def find(name: str) -> str:
        if name in table:
            return table[name]
        raise SecretMissing(name, namespace)

    return find
