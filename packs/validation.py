"""Cross-references inside a domain pack and between a tenant pack and its domain pack.

Schema checks (types, enums, unknown fields, conditions that do not compile) happen in the models;
this module checks what a schema cannot: that names point at things that exist and ids are unique.
Every problem is collected, so an author fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packs.domain import DomainPack
from packs.guardrails import Guardrails
from packs.playbook import CallToolStep, ManualStep, Playbook
from packs.problems import Problem, json_path
from packs.tenant import TenantPolicyPack


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, parts: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(self.file, json_path(parts), message))

    def known(self, parts: Sequence[str | int], name: str, known: Iterable[str], what: str) -> None:
        if name not in set(known):
            self.add(parts, f"unknown {what} {name!r}")

    def all_known(
        self,
        parts: Sequence[str | int],
        names: Iterable[str],
        known: Iterable[str],
        what: str,
        where: str = "",
    ) -> None:
        pool = set(known)
        for index, name in enumerate(names):
            if name not in pool:
                self.add([*parts, index], f"unknown {what} {name!r}{where}")

    def keys_known(
        self, parts: Sequence[str | int], names: Iterable[str], known: Iterable[str], what: str
    ) -> None:
        pool = set(known)
        for name in names:
            if name not in pool:
                self.add([*parts, name], f"unknown {what} {name!r}")

    def unique(self, parts: Sequence[str | int], ids: Sequence[str], field: str, what: str) -> None:
        seen: set[str] = set()
        for index, value in enumerate(ids):
            if value in seen:
                self.add([*parts, index, field], f"duplicate {what} {value!r}")
            seen.add(value)


def _check_playbooks(
    check: _Checker, key: str, playbooks: Sequence[Playbook], types: set[str], tools: set[str]
) -> None:
    for i, playbook in enumerate(playbooks):
        check.all_known([key, i, "appliesTo"], playbook.appliesTo, types, "exception type")
        for j, step in enumerate(playbook.steps):
            if isinstance(step, CallToolStep):
                check.known([key, i, "steps", j, "tool"], step.tool, tools, "tool")
            elif isinstance(step, ManualStep) and step.suggestedToolCall is not None:
                check.known(
                    [key, i, "steps", j, "suggestedToolCall", "tool"],
                    step.suggestedToolCall.tool,
                    tools,
                    "tool",
                )
        if playbook.rollbackTool is not None:
            check.known([key, i, "rollbackTool"], playbook.rollbackTool, tools, "tool")


def check_domain(pack: DomainPack, file: str) -> list[Problem]:
    """Every cross-reference problem of one domain pack."""
    check = _Checker(file)
    types = set(pack.exceptionTypes)
    tools = set(pack.tools)
    entities = set(pack.entities)
    for name, definition in pack.exceptionTypes.items():
        if definition.parentType is not None:
            check.known(
                ["exceptionTypes", name, "parentType"], definition.parentType, types, "exception type"
            )
            if definition.parentType == name:
                check.add(
                    ["exceptionTypes", name, "parentType"], "an exception type cannot be its own parent"
                )
        if definition.entity is not None:
            check.known(["exceptionTypes", name, "entity"], definition.entity, entities, "entity")
    for name, entity in pack.entities.items():
        for i, relation in enumerate(entity.relations):
            check.known(["entities", name, "relations", i, "target"], relation.target, entities, "entity")
    check.unique(["severityRules"], [rule.id for rule in pack.severityRules], "id", "severity rule id")
    check.unique(["playbooks"], [p.id for p in pack.playbooks], "id", "playbook id")
    _check_playbooks(check, "playbooks", pack.playbooks, types, tools)
    _check_guardrail_names(check, ["guardrails"], pack, pack.guardrails)
    playbook_ids = {p.id for p in pack.playbooks}
    check.unique(["testSuites"], [s.suiteId for s in pack.testSuites], "suiteId", "test suite id")
    for s, suite in enumerate(pack.testSuites):
        check.unique(["testSuites", s, "cases"], [c.caseId for c in suite.cases], "caseId", "test case id")
        for c, case in enumerate(suite.cases):
            where: list[str | int] = ["testSuites", s, "cases", c, "expected"]
            if case.expected.exceptionType is not None:
                check.known([*where, "exceptionType"], case.expected.exceptionType, types, "exception type")
            if case.expected.playbookId is not None and case.tenantId is None:
                check.known([*where, "playbookId"], case.expected.playbookId, playbook_ids, "playbook id")
    return check.problems


def _check_guardrail_names(
    check: _Checker, where: list[str | int], domain: DomainPack, rails: Guardrails
) -> None:
    if rails.requireHumanApprovalFor:
        check.all_known(
            [*where, "requireHumanApprovalFor"],
            rails.requireHumanApprovalFor,
            domain.exceptionTypes,
            "exception type",
        )
    for list_name, lists in (("allowLists", rails.allowLists), ("blockLists", rails.blockLists)):
        if lists is not None:
            check.all_known([*where, list_name, "tools"], lists.tools, domain.tools, "tool")


def check_tenant(tenant: TenantPolicyPack, domain: DomainPack, file: str) -> list[Problem]:
    """Every problem in how a tenant pack refers to its domain pack."""
    check = _Checker(file)
    types = set(domain.exceptionTypes)
    tools = set(domain.tools)
    _check_playbooks(check, "customPlaybooks", tenant.customPlaybooks, types, tools)
    domain_ids = {p.id for p in domain.playbooks}
    custom_ids = [p.id for p in tenant.customPlaybooks]
    check.unique(["customPlaybooks"], custom_ids, "id", "playbook id")
    for i, playbook_id in enumerate(custom_ids):
        if playbook_id in domain_ids:
            check.add(
                ["customPlaybooks", i, "id"],
                f"playbook id {playbook_id!r} is already used by the domain pack",
            )
    check.all_known(
        ["approvedBusinessProcesses"],
        tenant.approvedBusinessProcesses,
        domain_ids | set(custom_ids),
        "playbook id",
    )
    check.all_known(
        ["toolsAllowList"], tenant.toolsAllowList, tools, "tool", f" in domain {domain.domainName!r}"
    )
    check.keys_known(["severityOverrides"], tenant.severityOverrides, types, "exception type")
    check.keys_known(["sla", "byExceptionType"], tenant.sla.byExceptionType, types, "exception type")
    check.keys_known(
        ["sla", "agingThresholdMinutes"], tenant.sla.agingThresholdMinutes, types, "exception type"
    )
    _check_guardrail_names(check, ["guardrailOverrides"], domain, tenant.guardrailOverrides)
    check.unique(["routingRules"], [rule.id for rule in tenant.routingRules], "id", "routing rule id")
    check.keys_known(["toolOverrides"], tenant.toolOverrides, tools, "tool")
    channels = tenant.notificationPolicies.channels
    for group, recipients in tenant.notificationPolicies.recipientsByGroup.items():
        for index, recipient in enumerate(recipients):
            if "@" not in recipient and recipient not in channels:
                check.add(
                    ["notificationPolicies", "recipientsByGroup", group, index],
                    f"{recipient!r} is neither an email address nor a channel in notificationPolicies.channels",
                )
    return check.problems


def problems_in(items: Iterable[Problem]) -> list[Problem]:
    """Problems sorted for stable output."""
    return sorted(set(items), key=lambda p: (p.file, p.path, p.message))
