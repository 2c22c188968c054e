"""Rewriting tenant policy packs written for the earlier system into the current layout.

Handles that system's ``TenantPolicyPack`` models (``customSeverityOverrides``, ``customGuardrails``
or null, ``approvedTools``, ``toolOverrides`` as a list, ``humanApprovalRules`` per severity,
``retentionPolicies.dataTTL`` or null, ``customPlaybooks``, ``embeddingConfig``,
``notificationPolicies`` with channel names, ``webhookUrls`` and ``smtpConfig``) and the shapes its
users wrote (``workflowPolicies``, ``toolsAllowList`` grouped by category, ``routingRules`` keyed
``if``, ``environment``). Secrets (webhook URLs, API keys, SMTP passwords) never go into the pack:
the pack names a secret and the notice says what to set.
"""

from __future__ import annotations

import math
import re
from typing import Any

from packs.domain import DomainPack
from packs.importer.guardrails import upgrade_guardrails
from packs.importer.notes import Notes, Where
from packs.importer.playbooks import ToolIndex, convert_playbooks
from packs.importer.values import secret_name, severities, severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_MINUTES = {"s": 1 / 60, "m": 1, "": 1, "h": 60, "d": 1440, "w": 10080}
_EMBEDDING_PROVIDERS = {
    "openai": "openai",
    "azure": "openai",
    "azure-openai": "openai",
    "azure_openai": "openai",
    "local": "local",
    "huggingface": "local",
    "sentence-transformers": "local",
    "sentence_transformers": "local",
    "sentencetransformers": "local",
}
_FROM_KEYS = ("fromAddress", "from", "fromEmail", "sender", "senderAddress")


def duration_minutes(value: Any) -> int | None:
    """``"48h"`` → 2880; a bare number is minutes; None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    match = _DURATION.match(str(value))
    if match is None:
        return None
    return math.ceil(float(match.group(1)) * _MINUTES[match.group(2)])


def _days(value: Any) -> Any:
    """Days (rounded up) for ``dataTTL``: a bare number is days, as the earlier system read it."""
    minutes = duration_minutes(value if not isinstance(value, int | float) else f"{value}d")
    return math.ceil(minutes / 1440) if minutes is not None else value


def _flatten_tools(value: Any, notes: Notes, key: str) -> Any:
    if not isinstance(value, dict):
        return value
    flat: list[Any] = []
    moves: list[tuple[Where, Where]] = []
    for group, names in value.items():
        if isinstance(names, list):
            for index, name in enumerate(names):
                moves.append(([key, len(flat)], [key, group, index]))
                flat.append(name)
    notes.moved_many(moves)
    return flat


def _lift_workflow_policies(data: dict[str, Any], notes: Notes) -> None:
    workflow = data.pop("workflowPolicies")
    if not isinstance(workflow, dict):
        data["workflowPolicies"] = workflow  # leave it for the schema to report
        return
    moves: list[tuple[Where, Where]] = []
    for key in ("approvedBusinessProcesses", "severityOverrides", "escalationQueue"):
        if key in workflow:
            data[key] = workflow.pop(key)
            moves.append(([key], ["workflowPolicies", key]))
    aging = workflow.pop("agingThresholds", None)
    if isinstance(aging, dict):
        minutes = {}
        for name, value in aging.items():
            converted = duration_minutes(value)
            if converted is None:
                notes.problem(
                    ["workflowPolicies", "agingThresholds", name],
                    f"cannot read the duration {value!r}: write minutes, or a number with s, m, h, d or w",
                )
                converted = value
            minutes[name] = converted
        data.setdefault("sla", {})["agingThresholdMinutes"] = minutes
        moves.append((["sla", "agingThresholdMinutes"], ["workflowPolicies", "agingThresholds"]))
    for key, value in workflow.items():
        data[key] = value  # anything else is checked by the schema as a top-level field
        moves.append(([key], ["workflowPolicies", key]))
    notes.moved_many(moves)
    notes.add(
        ["workflowPolicies"],
        "workflowPolicies lifted to top-level fields (agingThresholds → sla.agingThresholdMinutes, "
        "durations in minutes)",
    )


def _severity_overrides(data: dict[str, Any], notes: Notes) -> None:
    items = data.pop("customSeverityOverrides")
    if items is None:
        notes.add(["customSeverityOverrides"], "null: no overrides")
        items = []
    if not isinstance(items, list):
        data["customSeverityOverrides"] = items  # for the schema to report
        return
    overrides: dict[str, Any] = dict(data.get("severityOverrides") or {})
    moves: list[tuple[Where, Where]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "exceptionType" not in item or "severity" not in item:
            notes.problem(["customSeverityOverrides", i], "expected {exceptionType, severity}")
            continue
        overrides[str(item["exceptionType"])] = severity(
            item["severity"], notes, ["customSeverityOverrides", i, "severity"]
        )
        moves.append((["severityOverrides", str(item["exceptionType"])], ["customSeverityOverrides", i]))
    data["severityOverrides"] = overrides
    if items:
        notes.add(["customSeverityOverrides"], "became severityOverrides {TYPE: SEVERITY}")
    notes.moved_many(moves, whole=True)


def _tool_overrides(value: Any, notes: Notes) -> Any:
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    moves: list[tuple[Where, Where]] = []
    for i, item in enumerate(value):
        where: list[str | int] = ["toolOverrides", i]
        if not isinstance(item, dict) or not isinstance(item.get("toolName"), str):
            notes.problem(where, "expected {toolName, timeoutSeconds, maxRetries}")
            continue
        entry = {k: v for k, v in item.items() if k != "toolName"}
        if "maxRetries" in entry:
            entry["retries"] = entry.pop("maxRetries")
            moves.append((["toolOverrides", item["toolName"], "retries"], [*where, "maxRetries"]))
        moves.append((["toolOverrides", item["toolName"]], where))
        out[item["toolName"]] = entry
    notes.moved_many(moves)
    notes.add(["toolOverrides"], "a list of {toolName, …} became a map by tool (maxRetries → retries)")
    return out


def _routing_rules(value: Any, notes: Notes) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    taken = {str(r.get("id")) for r in value if isinstance(r, dict) and "id" in r}
    for i, rule in enumerate(value):
        where: list[str | int] = ["routingRules", i]
        if isinstance(rule, dict):
            rule = dict(rule)
            if "if" in rule and "condition" not in rule:
                rule["condition"] = rule.pop("if")
                notes.add(where, "renamed 'if' to 'condition'")
                notes.moved([*where, "condition"], [*where, "if"])
            if "id" not in rule:
                candidate, n = f"route_{i + 1}", i + 1
                while candidate in taken:
                    n += 1
                    candidate = f"route_{n}"
                taken.add(candidate)
                rule["id"] = candidate
                notes.add(where, f"rule had no id: named it {candidate!r} (rules are tried in file order)")
        out.append(rule)
    return out


def _channel(
    name: str, urls: dict[str, Any], tenant: str, notes: Notes, where: list[str | int]
) -> dict[str, Any] | None:
    lowered = name.lower()
    if lowered in ("email", "mail", "smtp"):
        return {"kind": "email"}
    if "webhook" in lowered or "teams" in lowered or "slack" in lowered or name in urls:
        fmt = "teams" if "teams" in lowered else "slack" if "slack" in lowered else "json"
        ref = secret_name(tenant, name, "URL")
        given = name in urls
        said = (
            f"the URL in $.notificationPolicies.webhookUrls.{name} is not copied into the pack"
            if given
            else "the file gives no URL for it"
        )
        notes.add(
            where,
            f"channel {name!r} became a {fmt} webhook whose URL is the secret {ref}: set {ref} in "
            f"EXOPS_SECRETS ({said}; webhook URLs carry credentials)",
        )
        return {"kind": "webhook", "urlRef": ref, "format": fmt}
    notes.problem(
        where,
        f"channel {name!r}: exops sends email and webhooks (Slack, Teams or JSON); remove it, or name it "
        "'email' or '…Webhook' with its URL in webhookUrls",
    )
    return None


def _notification_policies(value: Any, tenant: str, notes: Notes) -> Any:
    if not isinstance(value, dict):
        return value
    policies = dict(value)
    urls = policies.pop("webhookUrls", None) or {}
    smtp = policies.pop("smtpConfig", None)
    channels = policies.get("channels")
    if isinstance(channels, list) or urls:
        names = [str(c) for c in channels] if isinstance(channels, list) else []
        names += [str(u) for u in urls if str(u) not in names]
        converted: dict[str, Any] = {}
        moves: list[tuple[Where, Where]] = []
        for index, name in enumerate(names):
            where: list[str | int] = (
                ["notificationPolicies", "channels", index]
                if isinstance(channels, list) and index < len(channels)
                else ["notificationPolicies", "webhookUrls", name]
            )
            channel = _channel(name, urls if isinstance(urls, dict) else {}, tenant, notes, where)
            if channel is not None:
                converted[name] = channel
                moves.append((["notificationPolicies", "channels", name], where))
        policies["channels"] = converted
        notes.moved_many(moves, whole=True)
    if isinstance(smtp, dict):
        email = [
            n
            for n, c in policies.get("channels", {}).items()
            if isinstance(c, dict) and c.get("kind") == "email"
        ]
        sender = next((smtp[k] for k in _FROM_KEYS if smtp.get(k)), None)
        if sender and email:
            policies["channels"][email[0]]["fromAddress"] = sender
        settings = {
            "EXOPS_SMTP_HOST": smtp.get("host"),
            "EXOPS_SMTP_PORT": smtp.get("port"),
            "EXOPS_SMTP_USERNAME": smtp.get("user") or smtp.get("username"),
        }
        tls = smtp.get("useTls", smtp.get("useTLS", smtp.get("tls")))
        shown = " ".join(f"{k}={v}" for k, v in settings.items() if v not in (None, ""))
        security = " EXOPS_SMTP_SECURITY=starttls" if tls else ""
        password = (
            "; set EXOPS_SMTP_PASSWORD yourself (the password in the file is not copied)"
            if smtp.get("password")
            else ""
        )
        fromnote = f"; the sender {sender} became the email channel's fromAddress" if sender and email else ""
        notes.add(
            ["notificationPolicies", "smtpConfig"],
            f"the SMTP server is an exops setting shared by all tenants, not part of a pack: set {shown}"
            f"{security}{password}{fromnote}",
        )
    return policies


def _embeddings(value: Any, tenant: str, notes: Notes) -> Any:
    if not isinstance(value, dict):
        return value
    where = ["embeddingConfig"]
    provider = str(value.get("provider", "local"))
    kind = _EMBEDDING_PROVIDERS.get(provider.lower())
    if kind is None:
        notes.problem(
            [*where, "provider"],
            f"provider {provider!r}: exops embeds locally ('local') or through an OpenAI-compatible "
            "endpoint ('openai', with baseUrl for others)",
        )
        kind = "local"
    out: dict[str, Any] = {"provider": kind}
    if value.get("model"):
        out["model"] = value["model"]
    for key in ("baseUrl", "apiBase", "endpoint"):
        if value.get(key):
            out["baseUrl"] = value[key]
    said = [f"provider {provider!r} read as {kind!r}"] if provider != kind else []
    if value.get("apiKey"):
        ref = secret_name(tenant, "EMBEDDING_API_KEY")
        out["apiKeyRef"] = ref
        said.append(f"the API key became the secret {ref}: set it in EXOPS_SECRETS (the key is not copied)")
    if value.get("dimension") is not None:
        said.append(f"dimension {value['dimension']} dropped: the model decides it")
    extra = sorted(
        set(value) - {"provider", "model", "apiKey", "dimension", "baseUrl", "apiBase", "endpoint"}
    )
    for key in extra:
        out[key] = value[key]  # for the schema to report
    notes.add(where, "became embeddings" + (": " + "; ".join(said) if said else ""))
    notes.moved(["embeddings"], where)
    return out


def upgrade_tenant(
    data: dict[str, Any],
    domain: DomainPack | None,
    notes: Notes,
    *,
    chosen: str | None = None,
    pin: bool = False,
) -> dict[str, Any]:
    """The same tenant pack in the current layout. ``domain`` supplies the default approved list;
    ``chosen`` says why it was chosen when the pack names none (or several could be meant), and
    ``pin`` writes its version as ``domainVersion``."""
    data = dict(data)
    tenant = str(data.get("tenantId") or "")
    if domain is not None and chosen is not None and "domainName" not in data:
        data["domainName"] = domain.domainName
        notes.add(["domainName"], f"missing: set to {domain.domainName} ({chosen})")
    if domain is not None and pin and "domainVersion" not in data:
        data["domainVersion"] = domain.version
        notes.add(["domainVersion"], f"set to {domain.version} ({chosen})")
    if "environment" in data:
        notes.add(
            ["environment"],
            f"dropped ({data.pop('environment')!r}): which environment runs a pack is decided where exops "
            "is deployed, not in the pack",
        )
    if "workflowPolicies" in data:
        _lift_workflow_policies(data, notes)
    if "customSeverityOverrides" in data:
        _severity_overrides(data, notes)
    if isinstance(data.get("severityOverrides"), dict):
        data["severityOverrides"] = {
            k: severity(v, notes, ["severityOverrides", k]) for k, v in data["severityOverrides"].items()
        }
    if "customGuardrails" in data:
        rails = data.pop("customGuardrails")
        if rails is None:
            notes.add(["customGuardrails"], "null: no overrides (the domain's guardrails apply)")
        else:
            data["guardrailOverrides"] = rails
            notes.add(["customGuardrails"], "renamed to guardrailOverrides")
            notes.moved(["guardrailOverrides"], ["customGuardrails"])
    if "guardrailOverrides" in data:
        data["guardrailOverrides"] = upgrade_guardrails(
            data["guardrailOverrides"], notes, ["guardrailOverrides"]
        )
    if "approvedTools" in data:
        data["toolsAllowList"] = data.pop("approvedTools")
        notes.add(["approvedTools"], "renamed to toolsAllowList")
        notes.moved(["toolsAllowList"], ["approvedTools"])
    if isinstance(data.get("toolsAllowList"), dict):
        data["toolsAllowList"] = _flatten_tools(data["toolsAllowList"], notes, "toolsAllowList")
        notes.add(["toolsAllowList"], "tools grouped by category flattened into one list")
    if "toolOverrides" in data:
        data["toolOverrides"] = _tool_overrides(data["toolOverrides"], notes)
    rules = data.get("humanApprovalRules")
    if isinstance(rules, list) and any(isinstance(r, dict) and "severity" in r for r in rules):
        converted = []
        for i, r in enumerate(rules):
            if isinstance(r, dict) and "severity" in r:
                level = severity(r["severity"], notes, ["humanApprovalRules", i, "severity"])
                converted.append({"severityIn": [level], "requireApproval": r.get("requireApproval", True)})
                notes.moved(
                    ["humanApprovalRules", i, "severityIn"], ["humanApprovalRules", i, "severity"], whole=True
                )
            else:
                converted.append(r)
        data["humanApprovalRules"] = converted
        notes.add(
            ["humanApprovalRules"], "{severity, requireApproval} became {severityIn: [...], requireApproval}"
        )
    elif isinstance(rules, list):
        data["humanApprovalRules"] = [
            {**r, "severityIn": severities(r["severityIn"], notes, ["humanApprovalRules", i, "severityIn"])}
            if isinstance(r, dict) and "severityIn" in r
            else r
            for i, r in enumerate(rules)
        ]
    if "retentionPolicies" in data and data["retentionPolicies"] is None:
        del data["retentionPolicies"]
        notes.add(["retentionPolicies"], "null: no retention limits")
    retention = data.get("retentionPolicies")
    if isinstance(retention, dict) and "dataTTL" in retention:
        retention = dict(retention)
        retention["dataTTLDays"] = _days(retention.pop("dataTTL"))
        data["retentionPolicies"] = retention
        notes.add(["retentionPolicies", "dataTTL"], f"became dataTTLDays = {retention['dataTTLDays']}")
        notes.moved(["retentionPolicies", "dataTTLDays"], ["retentionPolicies", "dataTTL"])
    if "routingRules" in data:
        data["routingRules"] = _routing_rules(data["routingRules"], notes)
    if "notificationPolicies" in data:
        if data["notificationPolicies"] is None:
            del data["notificationPolicies"]
            notes.add(["notificationPolicies"], "null: no notifications")
        else:
            data["notificationPolicies"] = _notification_policies(data["notificationPolicies"], tenant, notes)
    if "embeddingConfig" in data:
        value = data.pop("embeddingConfig")
        if value is None:
            notes.add(["embeddingConfig"], "null: the default local embeddings apply")
        else:
            data["embeddings"] = _embeddings(value, tenant, notes)
    tools = (
        ToolIndex.of({name: {"parameters": t.parameters} for name, t in domain.tools.items()})
        if domain
        else ToolIndex.of({})
    )
    if "customPlaybooks" in data:
        data["customPlaybooks"] = convert_playbooks(data["customPlaybooks"], tools, notes, "customPlaybooks")
    if "tenantName" not in data and "tenantId" in data:
        data["tenantName"] = str(data["tenantId"])
        notes.add(["tenantName"], "missing: set to the tenant id")
    if "approvedBusinessProcesses" not in data and domain is not None:
        approved = [p.id for p in domain.playbooks if p.approved]
        data["approvedBusinessProcesses"] = approved
        notes.add(
            ["approvedBusinessProcesses"],
            f"missing: every playbook of {domain.domainName} {domain.version} not flagged approved: false "
            f"counts as approved ({len(approved)}: {', '.join(approved) or 'none'}); custom playbooks are not "
            "approved until listed",
        )
    return data


def referenced_names(data: dict[str, Any]) -> dict[str, set[str]]:
    """The exception types, tools and playbooks a tenant pack (in any layout) refers to by name."""
    workflow = data.get("workflowPolicies") if isinstance(data.get("workflowPolicies"), dict) else {}
    assert isinstance(workflow, dict)
    types: set[str] = set()
    for source in (
        data.get("severityOverrides"),
        workflow.get("severityOverrides"),
        workflow.get("agingThresholds"),
    ):
        if isinstance(source, dict):
            types |= {str(k) for k in source}
    for item in data.get("customSeverityOverrides") or []:
        if isinstance(item, dict) and item.get("exceptionType"):
            types.add(str(item["exceptionType"]))
    tools: set[str] = set()
    for source in (data.get("approvedTools"), data.get("toolsAllowList")):
        if isinstance(source, list):
            tools |= {str(t) for t in source}
        elif isinstance(source, dict):
            tools |= {str(t) for names in source.values() if isinstance(names, list) for t in names}
    playbooks: set[str] = set()
    for source in (data.get("approvedBusinessProcesses"), workflow.get("approvedBusinessProcesses")):
        if isinstance(source, list):
            playbooks |= {str(p) for p in source}
    custom = {
        str(p.get("id") or p.get("playbookId"))
        for p in data.get("customPlaybooks") or []
        if isinstance(p, dict)
    }
    return {"types": types, "tools": tools, "playbooks": playbooks - custom}


def fits(data: dict[str, Any], domain: DomainPack) -> bool:
    """Whether every name the tenant pack refers to exists in ``domain`` (and it refers to some)."""
    names = referenced_names(data)
    if not any(names.values()):
        return False
    return (
        names["types"] <= set(domain.exceptionTypes)
        and names["tools"] <= set(domain.tools)
        and names["playbooks"] <= {p.id for p in domain.playbooks}
    )
