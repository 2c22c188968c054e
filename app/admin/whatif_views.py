"""What-if before activation over the admin API: replay the tenant's last N finished cases through a
candidate policy (sent as a document, or a stored version not yet active) and list every decision
that would change. Nothing is stored, activated, sent or called (``app.evals.whatif``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.admin.packs_service import field_problems, parse_upload
from app.admin.packs_views import POLICY_BODY, Policies
from app.api.deps import ServicesDep, TenantAdmin
from app.api.problems import ProblemError, responses
from app.evals.whatif import DEFAULT_LAST, MAX_LAST, run_what_if
from app.runtime import ConfigurationError
from evals.whatif import WhatIfReport
from packs.problems import PackError

router = APIRouter(prefix="/admin", tags=["admin: packs"])
Last = Annotated[int, Query(ge=1, le=MAX_LAST, description="How many of the newest finished cases to replay")]


async def _what_if(services: Any, tenant_id: str, document: dict[str, Any], last: int) -> WhatIfReport:
    try:
        return await run_what_if(
            services.db, services.runtime, services.store, tenant_id, document, source="candidate", last=last
        )
    except PackError as exc:
        raise ProblemError(
            422, f"{len(exc.problems)} problem(s) in the candidate", errors=field_problems(exc.problems)
        ) from None
    except (ConfigurationError, LookupError) as exc:
        raise ProblemError(404, str(exc)) from None


@router.post(
    "/{tenantId}/policy/whatif",
    response_model=WhatIfReport,
    responses=responses(404, 415),
    openapi_extra=POLICY_BODY,
)
async def what_if_policy(
    tenantId: str, request: Request, principal: TenantAdmin, services: ServicesDep, packs: Policies,
    last: Last = DEFAULT_LAST,
) -> WhatIfReport:  # fmt: skip
    """Replay the newest finished cases through the policy in the body; the decisions that change."""
    loaded = packs.validate(parse_upload(await request.body(), request.headers.get("content-type")), tenantId)
    return await _what_if(services, tenantId, loaded.document, last)


@router.post(
    "/{tenantId}/policy/versions/{version}/whatif", response_model=WhatIfReport, responses=responses(404)
)
async def what_if_policy_version(
    tenantId: str, version: str, principal: TenantAdmin, services: ServicesDep, packs: Policies,
    last: Last = DEFAULT_LAST,
) -> WhatIfReport:  # fmt: skip
    """Replay the newest finished cases through a stored version (e.g. before activating it)."""
    row = await packs.version(tenantId, version)
    return await _what_if(services, tenantId, dict(row.content), last)
