"""Endpoints a pack writes literally, checked without any I/O when the pack is validated.

A tool ``endpoint`` in a domain pack, and an ``llm.baseUrl`` or ``embeddings.baseUrl`` in a tenant
policy, are URLs exops will send requests (and credentials) to. Whatever can be refused before
anything runs is refused here, with the rule the run-time outbound policy applies
(``packs.addresses``): not http(s), no host, or a literal address in a range the operator has not
allowed (loopback, private, link-local, the cloud metadata service...). Host names are left to the
run-time check, which resolves them before every request. Webhook URLs are secrets, not literals,
so they are checked when they are used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from packs.addresses import Network, static_url_refusal
from packs.domain import DomainPack
from packs.problems import Problem, json_path
from packs.tenant import TenantPolicyPack


def _urls(pack: DomainPack | TenantPolicyPack) -> Iterator[tuple[list[str | int], str]]:
    if isinstance(pack, DomainPack):
        for name, tool in pack.tools.items():
            if tool.endpoint is not None:
                yield ["tools", name, "endpoint"], tool.endpoint
        return
    if pack.llm is not None and pack.llm.baseUrl:
        yield ["llm", "baseUrl"], pack.llm.baseUrl
    if pack.embeddings.provider == "openai":
        yield ["embeddings", "baseUrl"], pack.embeddings.endpoint


def endpoint_problems(
    pack: DomainPack | TenantPolicyPack, file: str, allowed: Iterable[Network] = ()
) -> list[Problem]:
    """One problem per literal URL of ``pack`` the outbound policy would refuse whatever DNS says."""
    networks = tuple(allowed)
    problems = []
    for parts, url in _urls(pack):
        reason = static_url_refusal(url, networks)
        if reason is not None:
            problems.append(Problem(file, json_path(parts), f"refused by the outbound policy: {reason}"))
    return problems
