"""Field names in snake_case, as the earlier system's own pack storage saved them.

Its models accepted both spellings (``populate_by_name``), and its storage wrote packs with
``model_dump_json()``, that is ``domain_name``, ``exception_types``, ``allow_lists``... Those names
are read as the camelCase the rest of the importer knows; user-chosen names (payload fields, tool
arguments, attribute names) are left exactly as written.
"""

from __future__ import annotations

from typing import Any

from packs.importer.notes import Notes, Where

SNAKE = {
    "domain_name": "domainName",
    "tenant_id": "tenantId",
    "tenant_name": "tenantName",
    "domain_version": "domainVersion",
    "exception_types": "exceptionTypes",
    "severity_rules": "severityRules",
    "default_severity": "defaultSeverity",
    "test_suites": "testSuites",
    "detection_rules": "detectionRules",
    "parent_type": "parentType",
    "priority_score": "priorityScore",
    "allow_lists": "allowLists",
    "block_lists": "blockLists",
    "human_approval_threshold": "humanApprovalThreshold",
    "no_auto_action_if_severity_in": "noAutoActionIfSeverityIn",
    "require_human_approval_for": "requireHumanApprovalFor",
    "max_auto_retries": "maxAutoRetries",
    "escalate_if_confidence_below": "escalateIfConfidenceBelow",
    "auto_action_allowed_only_for_approved_playbooks": "autoActionAllowedOnlyForApprovedPlaybooks",
    "severity_gates": "severityGates",
    "timeout_seconds": "timeoutSeconds",
    "max_retries": "maxRetries",
    "args_schema": "argsSchema",
    "step_id": "stepId",
    "exception_type": "exceptionType",
    "expected_output": "expectedOutput",
    "playbook_id": "playbookId",
    "applies_to": "appliesTo",
    "success_criteria": "successCriteria",
    "custom_severity_overrides": "customSeverityOverrides",
    "custom_guardrails": "customGuardrails",
    "approved_tools": "approvedTools",
    "tool_overrides": "toolOverrides",
    "human_approval_rules": "humanApprovalRules",
    "retention_policies": "retentionPolicies",
    "custom_playbooks": "customPlaybooks",
    "embedding_config": "embeddingConfig",
    "notification_policies": "notificationPolicies",
    "require_approval": "requireApproval",
    "data_ttl": "dataTTL",
    "tool_name": "toolName",
    "api_key": "apiKey",
    "recipients_by_group": "recipientsByGroup",
    "webhook_urls": "webhookUrls",
    "smtp_config": "smtpConfig",
    "use_tls": "useTls",
    "workflow_policies": "workflowPolicies",
    "approved_business_processes": "approvedBusinessProcesses",
    "severity_overrides": "severityOverrides",
    "escalation_queue": "escalationQueue",
    "aging_thresholds": "agingThresholds",
    "tools_allow_list": "toolsAllowList",
    "guardrail_overrides": "guardrailOverrides",
    "routing_rules": "routingRules",
    "assign_group": "assignGroup",
    "raw_payload": "rawPayload",
    "normalized_context": "normalizedContext",
    "source_system": "sourceSystem",
    "exception_id": "exceptionId",
    "case_id": "caseId",
    "suite_id": "suiteId",
    "input_exception_type": "inputExceptionType",
}
# Values whose keys the author chose (payload fields, arguments, names): renamed, never entered.
_OPAQUE = {
    "rawPayload",
    "normalizedContext",
    "parameters",
    "arguments",
    "argsSchema",
    "payload",
    "attributes",
    "fields",
    "keys",
    "webhookUrls",
    "recipientsByGroup",
    "severityOverrides",
    "agingThresholds",
    "ontology",
}
# Maps keyed by names the author chose, whose values are again pack objects.
_NAMED = {"exceptionTypes", "tools", "entities", "severityGates", "channels", "toolOverrides"}


def camel_case_keys(data: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """The document with the earlier system's snake_case field names in camelCase (noted once)."""
    renamed: list[str] = []
    moves: list[tuple[Where, Where]] = []

    def walk(node: Any, where: list[str | int], named: bool) -> Any:
        if isinstance(node, list):
            return [walk(item, [*where, i], False) for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if named:  # a name the author chose; its value is a pack object again
                out[key] = walk(value, [*where, key], False)
                continue
            new = SNAKE.get(key, key) if isinstance(key, str) else key
            if new != key:
                if new in node:
                    notes.problem([*where, key], f"given both as {key} and as {new}: keep one")
                    continue
                renamed.append(f"{key} → {new}")
                moves.append(([*where, new], [*where, key]))
            if new in _OPAQUE:
                out[new] = value
            else:
                out[new] = walk(value, [*where, new], new in _NAMED)
        return out

    result = walk(data, [], False)
    if renamed:
        shown = sorted(set(renamed))
        notes.add(
            [],
            "field names in snake_case (as the earlier system's pack storage saved them) read as "
            f"camelCase: {', '.join(shown)}",
        )
        for new, old in moves:  # outer names first, so a path maps back through each level
            notes.moved(new, old)
    assert isinstance(result, dict)
    return result
