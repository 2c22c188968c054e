"""Routes for pack versions: domain packs (platform admin) and each tenant's policy (its admin).

Both sets have the same shape (list, upload, validate, read, activate, roll back, diff); the rules
live in ``packs_service`` and these routes only pick the caller, the kind and the status code.
A pack is uploaded as the raw JSON or YAML document, so a pack file can be sent as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.admin.packs_service import UPLOAD_TYPES, PackAdmin, field_problems
from app.api.deps import PlatformAdmin, ServicesDep, TenantAdmin
from app.api.openapi import component_ref
from app.api.problems import FieldProblem, responses
from app.db.models import PackVersion
from packs.domain import DomainPack
from packs.loader import LoadedPack
from packs.tenant import TenantPolicyPack

router = APIRouter(prefix="/admin", tags=["admin: packs"])


class PackVersionView(BaseModel):
    kind: Literal["domain", "tenant"]
    name: str = Field(description="The domainName, or the tenantId of a policy")
    version: str
    active: bool
    source: str = Field(description="api, or file:<path> for a version read from the packs folder")
    createdAt: datetime
    createdBy: str
    activatedAt: datetime | None = Field(description="When it was last made active")
    contentHash: str


class PackVersionDetail(PackVersionView):
    content: dict[str, Any] = Field(description="The document as stored (older layouts rewritten)")


class PackUploaded(PackVersionView):
    created: bool = Field(description="False when the same version with the same content was already stored")
    notices: list[FieldProblem] = Field(description="What the importer rewrote from an older layout")


class Validation(BaseModel):
    valid: bool
    notices: list[FieldProblem]


class DomainPackVersions(BaseModel):
    domainName: str
    activeVersion: str | None
    versions: list[PackVersionView]


class DomainPackList(BaseModel):
    items: list[DomainPackVersions]


class PolicyVersions(BaseModel):
    tenantId: str
    activeVersion: str | None
    versions: list[PackVersionView]


class Change(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    path: str = Field(description="JSONPath; list items with an id are addressed as [?(@.id=='x')]")
    change: Literal["added", "removed", "changed"]
    from_: Any = Field(alias="from", default=None)
    to: Any = None


class PackDiff(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    from_: str = Field(alias="from")
    to: str
    changes: list[Change]


def upload_body(model: type[BaseModel]) -> dict[str, Any]:
    """The raw pack document, in any media type the server reads (``UPLOAD_TYPES``), with its schema.

    The schema is the current layout; older layouts are also accepted and rewritten (the response
    lists each rewrite in ``notices``). Without a Content-Type the server guesses JSON or YAML."""
    return {
        "requestBody": {
            "required": True,
            "description": "The pack document, JSON or YAML (older layouts are rewritten, with notices)",
            "content": {media: {"schema": component_ref(model)} for media in UPLOAD_TYPES},
        }
    }


DOMAIN_BODY = upload_body(DomainPack)
POLICY_BODY = upload_body(TenantPolicyPack)
Activate = Annotated[bool, Query(description="Make the uploaded version the active one")]
VersionFrom = Annotated[str, Query(alias="from", description="The older version")]
VersionTo = Annotated[str, Query(description="The newer version")]
READ = responses(404)
WRITE = responses(404, 409)
UPLOAD = responses(409, 415)
CHECK = responses(415)


async def domain_packs(services: ServicesDep) -> PackAdmin:
    return PackAdmin(services.db, services.store, "domain", services.runtime.outbound.allowed_networks)


async def policies(services: ServicesDep) -> PackAdmin:
    return PackAdmin(services.db, services.store, "tenant", services.runtime.outbound.allowed_networks)


DomainPacks = Annotated[PackAdmin, Depends(domain_packs)]
Policies = Annotated[PackAdmin, Depends(policies)]


def view(row: PackVersion) -> PackVersionView:
    return PackVersionView(
        kind=row.kind, name=row.name, version=row.version, active=row.active, source=row.source,
        createdAt=row.created_at, createdBy=row.created_by, activatedAt=row.activated_at,
        contentHash=row.content_hash,
    )  # fmt: skip


def detail(row: PackVersion) -> PackVersionDetail:
    return PackVersionDetail(**view(row).model_dump(), content=row.content)


def active_version(rows: list[PackVersion]) -> str | None:
    return next((r.version for r in rows if r.active), None)


async def upload(
    packs: PackAdmin, request: Request, response: Response, actor: str, activate: bool, tenant: str | None
) -> PackUploaded:
    loaded = packs.read(await request.body(), request.headers.get("content-type"), tenant)
    row, created = await packs.upload(loaded, actor=actor, activate=activate)
    if not created:
        response.status_code = status.HTTP_200_OK
    notices = field_problems(loaded.notices)
    return PackUploaded(**view(row).model_dump(), created=created, notices=notices)


async def validation(packs: PackAdmin, request: Request, tenant: str | None) -> Validation:
    loaded: LoadedPack = packs.read(await request.body(), request.headers.get("content-type"), tenant)
    return Validation(valid=True, notices=field_problems(await packs.notices_for(loaded)))


async def diff(packs: PackAdmin, name: str, before: str, after: str) -> PackDiff:
    changes = await packs.diff(name, before, after)
    return PackDiff.model_validate({"name": name, "from": before, "to": after, "changes": changes})


# Domain packs: shared by every tenant on the domain, so only the platform admin manages them.


@router.get("/domain-packs", response_model=DomainPackList, responses=responses(401, 403))
async def list_domain_packs(principal: PlatformAdmin, packs: DomainPacks) -> DomainPackList:
    """Every domain pack with its active version and its whole history."""
    rows = await packs.versions()
    names = sorted({r.name for r in rows})
    return DomainPackList(
        items=[
            DomainPackVersions(
                domainName=name,
                activeVersion=active_version([r for r in rows if r.name == name]),
                versions=[view(r) for r in rows if r.name == name],
            )
            for name in names
        ]
    )


@router.post("/domain-packs", status_code=status.HTTP_201_CREATED, response_model=PackUploaded,
             responses={**UPLOAD, 200: {"model": PackUploaded, "description": "Already stored"}},
             openapi_extra=DOMAIN_BODY)  # fmt: skip
async def upload_domain_pack(
    request: Request,
    response: Response,
    principal: PlatformAdmin,
    packs: DomainPacks,
    activate: Activate = False,
) -> PackUploaded:
    """Store a new domain pack version after full validation; optionally activate it."""
    return await upload(packs, request, response, principal.actor, activate, None)


@router.post("/domain-packs/validate", response_model=Validation, responses=CHECK, openapi_extra=DOMAIN_BODY)
async def validate_domain_pack(request: Request, principal: PlatformAdmin, packs: DomainPacks) -> Validation:
    """Validate a domain pack exactly as an upload would; nothing is stored."""
    return await validation(packs, request, None)


@router.get("/domain-packs/{name}/versions/{version}", response_model=PackVersionDetail, responses=READ)
async def get_domain_pack(
    name: str, version: str, principal: PlatformAdmin, packs: DomainPacks
) -> PackVersionDetail:
    """One version with its content."""
    return detail(await packs.version(name, version))


@router.post(
    "/domain-packs/{name}/versions/{version}/activate", response_model=PackVersionView, responses=WRITE
)
async def activate_domain_pack(
    name: str, version: str, principal: PlatformAdmin, packs: DomainPacks
) -> PackVersionView:
    """Make this version the active one; refused (409) when an active tenant policy would break."""
    return view(await packs.activate(name, version, principal.actor))


@router.post("/domain-packs/{name}/rollback", response_model=PackVersionView, responses=WRITE)
async def rollback_domain_pack(name: str, principal: PlatformAdmin, packs: DomainPacks) -> PackVersionView:
    """Activate again the version that was active before the current one."""
    return view(await packs.rollback(name, principal.actor))


@router.get("/domain-packs/{name}/diff", response_model=PackDiff, responses=READ)
async def diff_domain_pack(
    name: str, principal: PlatformAdmin, packs: DomainPacks, before: VersionFrom, to: VersionTo
) -> PackDiff:
    """What changed between two versions."""
    return await diff(packs, name, before, to)


# Tenant policies: each tenant's admin manages its own (the platform admin may too).


@router.get("/{tenantId}/policy", response_model=PolicyVersions, responses=READ)
async def list_policy_versions(tenantId: str, principal: TenantAdmin, packs: Policies) -> PolicyVersions:
    """The tenant's policy versions and which one is active."""
    rows = await packs.versions(tenantId)
    return PolicyVersions(
        tenantId=tenantId, activeVersion=active_version(rows), versions=[view(r) for r in rows]
    )


@router.post("/{tenantId}/policy", status_code=status.HTTP_201_CREATED, response_model=PackUploaded,
             responses={**UPLOAD, 200: {"model": PackUploaded, "description": "Already stored"}},
             openapi_extra=POLICY_BODY)  # fmt: skip
async def upload_policy(
    tenantId: str, request: Request, response: Response, principal: TenantAdmin, packs: Policies,
    activate: Activate = False,
) -> PackUploaded:  # fmt: skip
    """Store a new policy version, validated against the active domain pack it names."""
    return await upload(packs, request, response, principal.actor, activate, tenantId)


@router.post(
    "/{tenantId}/policy/validate", response_model=Validation, responses=CHECK, openapi_extra=POLICY_BODY
)
async def validate_policy(
    tenantId: str, request: Request, principal: TenantAdmin, packs: Policies
) -> Validation:
    """Validate a policy exactly as an upload would; nothing is stored."""
    return await validation(packs, request, tenantId)


@router.get("/{tenantId}/policy/versions/{version}", response_model=PackVersionDetail, responses=READ)
async def get_policy(
    tenantId: str, version: str, principal: TenantAdmin, packs: Policies
) -> PackVersionDetail:
    """One version with its content."""
    return detail(await packs.version(tenantId, version))


@router.post(
    "/{tenantId}/policy/versions/{version}/activate", response_model=PackVersionView, responses=WRITE
)
async def activate_policy(
    tenantId: str, version: str, principal: TenantAdmin, packs: Policies
) -> PackVersionView:
    """Make this version active; refused (409) when it no longer validates against the active domain pack."""
    return view(await packs.activate(tenantId, version, principal.actor))


@router.post("/{tenantId}/policy/rollback", response_model=PackVersionView, responses=WRITE)
async def rollback_policy(tenantId: str, principal: TenantAdmin, packs: Policies) -> PackVersionView:
    """Activate again the version that was active before the current one."""
    return view(await packs.rollback(tenantId, principal.actor))


@router.get("/{tenantId}/policy/diff", response_model=PackDiff, responses=READ)
async def diff_policy(
    tenantId: str, principal: TenantAdmin, packs: Policies, before: VersionFrom, to: VersionTo
) -> PackDiff:
    """What changed between two versions."""
    return await diff(packs, tenantId, before, to)
