"""Pack test suites: example exceptions with the decisions the packs must produce for them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from packs.common import Actionability, PackModel, ResolutionStatus, Severity, TenantId
from packs.playbook import Identifier


class CaseInput(PackModel):
    exceptionType: str | None = Field(default=None, description="Omit to test type detection.")
    sourceSystem: str = "test-suite"
    severity: Severity | None = Field(default=None, description="A severity the source already gave.")
    rawPayload: dict[str, Any] = Field(default_factory=dict)
    normalizedContext: dict[str, Any] = Field(default_factory=dict)
    slaMinutesRemaining: float | None = None


class CaseExpectation(PackModel):
    """Only the fields given are checked; ``playbookId: null`` checks that no playbook is selected."""

    exceptionType: str | None = None
    severity: Severity | None = None
    actionability: Actionability | None = None
    playbookId: str | None = None
    humanApprovalRequired: bool | None = None
    resolutionStatus: ResolutionStatus | None = None

    def checked(self) -> dict[str, Any]:
        """The expected values the author actually wrote, by field name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class TestCase(PackModel):
    __test__ = False  # not a pytest class

    caseId: Identifier
    description: str = ""
    tenantId: TenantId | None = Field(default=None, description="Run under this tenant's policy.")
    input: CaseInput
    expected: CaseExpectation


class TestSuite(PackModel):
    __test__ = False

    suiteId: Identifier
    description: str = ""
    cases: list[TestCase] = Field(min_length=1)
