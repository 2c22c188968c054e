"""``POST /run``: a synchronous evaluation of a batch with given packs, as ``exops run`` does.

It answers "what would exops do with these exceptions under these packs" without touching any case:
runs use an in-memory checkpointer and dry-run tools, and nothing is written to the database. Packs
come inline, by a path inside the server's packs folder (never outside it), or default to the
tenant's active versions; inline and path packs pass the very validation an upload does
(``packs.loader.validate_pack``, endpoint checks included).

Secrets: the tenant policy's references (its LLM ``apiKeyRef``) resolve in the tenant's namespace
only. An inline domain pack from a tenant user is that tenant's, so its tools could use the
tenant's secrets only; the platform's secrets serve domain packs the platform stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from fastapi import APIRouter

from app.api.deps import PrincipalDep, Services, ServicesDep, tenant_role
from app.api.problems import FieldProblem, ProblemError, responses
from app.auth.principal import Principal
from app.cases.schemas import RunRequest, RunResponse
from app.runtime import ConfigurationError, Owner, SecretRefError
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.runner import CaseRunner
from packs.documents import read_document
from packs.domain import DomainPack
from packs.loader import LoadedPack, validate_pack
from packs.problems import PackError
from packs.tenant import TenantPolicyPack

router = APIRouter(tags=["run"])
Kind = Literal["domain", "tenant"]


def _refuse(field: str, message: str) -> ProblemError:
    return ProblemError(422, message, errors=[FieldProblem(path=f"body.{field}", message=message)])


def safe_path(root: Path, given: str, field: str) -> Path:
    """``given`` inside ``root``: relative, no ``..``, and still inside after symlinks are resolved."""
    parts = PurePosixPath(given.replace("\\", "/"))
    if parts.is_absolute() or Path(given).is_absolute() or ".." in parts.parts or given.strip() == "":
        raise _refuse(field, "a path relative to the server's packs folder, without '..'")
    path = (root / parts).resolve()
    if not path.is_relative_to(root.resolve()):
        raise _refuse(field, "the path leaves the server's packs folder")
    if not path.is_file():
        raise _refuse(field, f"no pack file {given} in the server's packs folder")
    return path


class _Loader:
    """Loads the request's packs; problems are collected with their request paths, then raised once."""

    def __init__(self, services: Services, body: RunRequest, principal: Principal) -> None:
        self.services, self.body = services, body
        self.domain: DomainPack | None = None
        self.domain_owner: Owner = (
            "tenant" if body.domainPack is not None and not principal.is_platform_admin else "platform"
        )
        self.problems: list[FieldProblem] = []

    def find_domain(self, name: str, version: str | None) -> DomainPack | None:
        own = self.domain
        if own is not None and own.domainName == name and version in (None, own.version):
            return own
        return self.services.store.domain(name, version)

    async def load(self, kind: Kind, inline: dict[str, Any] | None, path: str | None) -> LoadedPack | None:
        field = "domainPack" if kind == "domain" else "tenantPolicy"
        if inline is not None and path is not None:
            raise _refuse(field, f"give {field} or {field}Path, not both")
        where = f"body.{field}" if inline is not None else f"body.{field}Path"
        try:
            if inline is not None:
                document, source = inline, where
            elif path is not None:
                file = safe_path(self.services.settings.packs_dir, path, f"{field}Path")
                document, source = await asyncio.to_thread(read_document, file), path
            else:
                return None
            networks = self.services.runtime.outbound.allowed_networks
            return validate_pack(document, kind, source, self.find_domain, allowed_networks=networks)
        except PackError as exc:
            for problem in exc.problems:
                inner = problem.path[1:] if inline is not None else ""
                text = problem.message if inline is not None else f"{path}: {problem.path}: {problem.message}"
                self.problems.append(FieldProblem(path=where + inner, message=text))
            return None

    async def packs(self) -> tuple[TenantPolicyPack, DomainPack]:
        body = self.body
        domain = await self.load("domain", body.domainPack, body.domainPackPath)
        if domain is not None:
            assert isinstance(domain.pack, DomainPack)
            self.domain = domain.pack
        loaded = None
        if not self.problems:  # a tenant pack cannot be checked against a broken domain pack
            loaded = await self.load("tenant", body.tenantPolicy, body.tenantPolicyPath)
        if self.problems:
            raise ProblemError(
                422, f"{len(self.problems)} pack problem(s); nothing was run", errors=self.problems
            )
        tenant = self.services.store.tenant(body.tenantId) if loaded is None else loaded.pack
        if not isinstance(tenant, TenantPolicyPack):
            raise _refuse("tenantPolicy", f"tenant {body.tenantId} has no active policy pack: give one")
        if tenant.tenantId != body.tenantId:
            raise _refuse("tenantPolicy.tenantId", f"is {tenant.tenantId}, not {body.tenantId}")
        if self.domain is None:
            self.domain = self.services.store.domain(tenant.domainName, tenant.domainVersion)
        if self.domain is None:
            raise _refuse("domainPack", f"domain pack {tenant.domainName} is not active: give one")
        return tenant, self.domain


def _secret_problem(body: RunRequest, exc: SecretRefError) -> ProblemError:
    """A reference the tenant's namespace does not hold, at the request field that names it."""
    if body.tenantPolicy is not None:
        where, message = "body.tenantPolicy" + exc.field[1:], str(exc.missing)
    elif body.tenantPolicyPath is not None:
        where, message = "body.tenantPolicyPath", f"{body.tenantPolicyPath}: {exc}"
    else:
        where, message = "body.tenantId", f"the active policy of {body.tenantId}: {exc}"
    return ProblemError(
        422, f"nothing was run: {message}", errors=[FieldProblem(path=where, message=message)]
    )


def _check_items(body: RunRequest, limit: int) -> None:
    if len(body.exceptions) > limit:
        raise ProblemError(413, f"{len(body.exceptions)} exceptions in one request; the limit is {limit}")
    wrong = [
        FieldProblem(
            path=f"body.exceptions[{i}].tenantId", message=f"does not match tenantId {body.tenantId}"
        )
        for i, raw in enumerate(body.exceptions)
        if raw.tenantId not in (None, body.tenantId)
    ]
    if wrong:
        raise ProblemError(422, f"{len(wrong)} invalid field(s); nothing was run", errors=wrong)


@router.post("/run", response_model=RunResponse, responses=responses(401, 403, 404, 413, 422, 429),
             summary="Evaluate a batch synchronously (nothing is stored)")  # fmt: skip
async def run_batch(body: RunRequest, principal: PrincipalDep, services: ServicesDep) -> RunResponse:
    """Run the exceptions through the graph now and return `{tenantId, runId, results}`, one result per
    exception in input order, exactly as `exops run` prints them.

    This is an evaluation: it uses an in-memory checkpointer and dry-run tools, so **nothing is
    stored** (no case, event, approval or run row) and no tool reaches a real system; cases that would
    wait for a person report it in `pending`. Packs: `domainPack` / `tenantPolicy` inline (validated
    like an upload; each problem is reported with its path), or `domainPackPath` / `tenantPolicyPath`
    relative to the server's packs folder, or by default the tenant's active versions. Operators (and
    above) of `tenantId` only."""
    await tenant_role("operator")(services, principal, body.tenantId)
    _check_items(body, services.settings.max_batch)
    loader = _Loader(services, body, principal)
    tenant, domain = await loader.packs()
    run_id = f"RUN-{uuid.uuid4().hex[:12].upper()}"
    try:
        context = services.runtime.context_for(
            tenant, domain, tool_mode="dry-run", run_id=run_id, record_only=True,
            domain_owner=loader.domain_owner,
        )  # fmt: skip
        context = dataclasses.replace(context, memory=None)  # an evaluation teaches the case memory nothing
    except SecretRefError as exc:  # a secret the tenant's LLM names is not in the tenant's namespace
        raise _secret_problem(body, exc) from None
    except ConfigurationError as exc:  # packs of two domains
        raise ProblemError(422, str(exc), errors=[FieldProblem(path="body", message=str(exc))]) from None
    async with open_checkpointer("memory") as saver:
        runner = CaseRunner(build_graph(checkpointer=saver))
        results = await runner.run_batch(
            lambda _raw: context, body.exceptions, concurrency=services.settings.run_concurrency
        )
    return RunResponse(tenantId=body.tenantId, runId=run_id, results=results)
