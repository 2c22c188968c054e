"""Pack versions as administrators manage them: upload, validate, activate, roll back, diff.

The same rules hold for domain packs and tenant policies, so one service serves both; what differs
is what an activation must not break. A domain pack is shared, so activating one of its versions is
refused while any active tenant policy on that domain would stop validating against it; a tenant
policy is checked against the domain pack active at the moment it is activated. After every
activation the in-memory ``PackStore`` is rebuilt from the committed rows, so the next run uses it;
other processes rebuild theirs within a second (each change is announced first, which also makes
concurrent changes from several processes take turns: ``app/packstore.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.problems import FieldProblem, ProblemError
from app.db.models import PackActivation, PackVersion
from app.db.session import Database
from app.db.types import utc_now
from app.packstore import PackStore, activate_version, content_hash, pack_identity, store_version
from app.shared.changes import announce
from packs.addresses import Network
from packs.common import PackKind
from packs.documents import detect_kind, parse_document
from packs.domain import DomainPack
from packs.loader import LoadedPack, load_domain, load_tenant, validate_pack
from packs.problems import PackError, Problem, json_path

log = logging.getLogger("exops.admin")

UPLOAD_TYPES = {
    "application/json": "json",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
}
"""Media types a pack upload may carry, and the parser each means."""

ChangeKind = Literal["added", "removed", "changed"]


def field_problems(problems: Sequence[Problem], prefix: str = "") -> list[FieldProblem]:
    return [FieldProblem(path=p.path, message=f"{prefix}{p.message}") for p in problems]


def parse_upload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The uploaded pack document; the media type picks the parser (guessed from the text when absent)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media not in UPLOAD_TYPES:
        raise ProblemError(415, f"a pack is uploaded as {', '.join(UPLOAD_TYPES)}, not {media}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(
            422, "the pack is not UTF-8 text", errors=[FieldProblem(path="$", message="not UTF-8")]
        ) from None
    try:
        return parse_document(text, "upload", fmt=UPLOAD_TYPES.get(media))
    except PackError as exc:
        raise ProblemError(422, "the pack cannot be read", errors=field_problems(exc.problems)) from None


def _change(path: str, change: ChangeKind, before: Any, after: Any) -> dict[str, Any]:
    return {"path": path, "change": change, "from": before, "to": after}


def _keyed_by_id(items: list[Any]) -> dict[Any, Any] | None:
    """Lists of objects with unique ``id`` keys compare by id (a reorder is not a change)."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("id"), str | int) for i in items):
        return None
    keyed = {i["id"]: i for i in items}
    return keyed if len(keyed) == len(items) else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _diff_keyed(
    before: dict[Any, Any],
    after: dict[Any, Any],
    child: Callable[[Any], str],
    order: Callable[[dict[Any, Any], dict[Any, Any]], list[Any]],
) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for key in order(before, after):
        if key not in after:
            changes.append(_change(child(key), "removed", before[key], None))
        elif key not in before:
            changes.append(_change(child(key), "added", None, after[key]))
        else:
            changes += diff_documents(before[key], after[key], child(key))
    return changes


def _sorted_keys(before: dict[Any, Any], after: dict[Any, Any]) -> list[Any]:
    """Object members in name order: PostgreSQL's JSONB does not keep the author's order."""
    return sorted({*before, *after}, key=str)


def _list_order(before: dict[Any, Any], after: dict[Any, Any]) -> list[Any]:
    return [*before, *(k for k in after if k not in before)]


def diff_documents(before: Any, after: Any, path: str = "$") -> list[dict[str, Any]]:
    """Every difference between two JSON documents, with the JSONPath of each.

    Lists compare by index, except lists of objects with an ``id``, which compare by id
    (``$.playbooks[?(@.id=='x')].priority``) so that inserting a playbook is one change, not many.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        return _diff_keyed(before, after, lambda key: path + json_path([str(key)])[1:], _sorted_keys)
    if isinstance(before, list) and isinstance(after, list):
        old, new = _keyed_by_id(before), _keyed_by_id(after)
        if old is not None and new is not None:
            return _diff_keyed(old, new, lambda key: f"{path}[?(@.id=={key!r})]", _list_order)
        return _diff_keyed(
            dict(enumerate(before)), dict(enumerate(after)), lambda index: f"{path}[{index}]", _list_order
        )
    return [] if _same(before, after) else [_change(path, "changed", before, after)]


def _activated(row: PackVersion) -> tuple[datetime, int]:
    assert row.activated_at is not None
    return row.activated_at, row.id


@dataclass
class PackAdmin:
    """Pack versions of one kind (``domain`` or ``tenant``), over the database and the running store.
    ``allowed_networks`` are the operator's (``EXOPS_OUTBOUND_ALLOWED_NETWORKS``), for the endpoint checks."""

    db: Database
    store: PackStore
    kind: PackKind
    allowed_networks: tuple[Network, ...]

    @property
    def label(self) -> str:
        return "domain pack" if self.kind == "domain" else "tenant policy"

    def read(self, body: bytes, content_type: str | None, tenant_id: str | None = None) -> LoadedPack:
        """An uploaded pack parsed and fully validated: the one path of upload and ``/validate``, so
        what one accepts the other stores (parsing refuses what JSON cannot hold, see ``packs``)."""
        return self.validate(parse_upload(body, content_type), tenant_id)

    def validate(self, data: dict[str, Any], tenant_id: str | None = None) -> LoadedPack:
        """A fully validated pack, or a 422 with one error per problem; a policy must be for ``tenant_id``.
        The checks are ``packs.loader.validate_pack``'s, which ``POST /run`` applies to inline packs too."""
        source = "upload"
        kind = detect_kind(data)
        if kind is not None and kind != self.kind:
            where = "/admin/domain-packs" if kind == "domain" else "/admin/{tenantId}/policy"
            problem = Problem(source, "$", f"this is a {kind} pack, not a {self.label}: upload it to {where}")
            raise ProblemError(422, f"not a {self.label}", errors=field_problems([problem]))
        problems: list[Problem] = []
        named = data.get("tenantId")
        if tenant_id is not None and named is not None and named != tenant_id:
            problems.append(Problem(source, "$.tenantId", f"does not match the path tenant {tenant_id}"))
        try:
            loaded = validate_pack(
                data, self.kind, source, self.store.domain, allowed_networks=self.allowed_networks
            )
        except PackError as exc:
            problems = sorted({*problems, *exc.problems})
        if problems:
            raise ProblemError(
                422, f"{len(problems)} problem(s) in the {self.label}; nothing was stored",
                errors=field_problems(problems),
            )  # fmt: skip
        return loaded

    async def notices_for(self, loaded: LoadedPack) -> list[Problem]:
        """The importer's notes, and a warning when the version is already taken by other content."""
        notices = list(loaded.notices)
        _, name, version = pack_identity(loaded)
        async with self.db.session() as session:
            existing = await self._find(session, name, version)
        if existing is not None and existing.content_hash != content_hash(loaded.document):
            notices.append(
                Problem(
                    "upload", "$.version", f"{version} already exists with other content: raise the version"
                )
            )
        return notices

    async def upload(self, loaded: LoadedPack, *, actor: str, activate: bool) -> tuple[PackVersion, bool]:
        """Store a validated version (and activate it); the same version with other content is a 409."""
        async with self.db.session() as session:
            await announce(session, "packs")  # also makes concurrent uploads take turns
            try:
                row, created = await store_version(session, loaded, source="api", actor=actor, activate=False)
            except PackError as exc:
                raise ProblemError(
                    409, str(exc.problems[0].message), errors=field_problems(exc.problems)
                ) from None
            log.info("%s uploaded %s %s %s", actor, self.kind, row.name, row.version)
            if activate:
                await self._activate(session, row, actor)
        if activate:
            await self.reload()
        return row, created

    async def versions(self, name: str | None = None) -> list[PackVersion]:
        query = select(PackVersion).where(PackVersion.kind == self.kind)
        if name is not None:
            query = query.where(PackVersion.name == name)
        async with self.db.session() as session:
            rows = (await session.execute(query.order_by(PackVersion.name, PackVersion.id))).scalars().all()
        return list(rows)

    async def version(self, name: str, version: str) -> PackVersion:
        async with self.db.session() as session:
            row = await self._find(session, name, version)
        if row is None:
            raise ProblemError(404, f"no {self.label} {name} version {version}")
        return row

    async def activate(self, name: str, version: str, actor: str) -> PackVersion:
        async with self.db.session() as session:
            await announce(session, "packs")
            row = await self._find(session, name, version)
            if row is None:
                raise ProblemError(404, f"no {self.label} {name} version {version}")
            await self._activate(session, row, actor)
        await self.reload()
        return row

    async def rollback(self, name: str, actor: str) -> PackVersion:
        """Undo the latest activation still standing: the version active before it comes back.
        Repeated rollbacks walk further back (1 → 2 → 3, then back to 2, then to 1)."""
        async with self.db.session() as session:
            await announce(session, "packs")
            rows = (
                (
                    await session.execute(
                        select(PackVersion).where(PackVersion.kind == self.kind, PackVersion.name == name)
                    )
                )
                .scalars()
                .all()
            )
            current = next((r for r in rows if r.active), None)
            if current is None:
                raise ProblemError(409 if rows else 404, f"{self.label} {name} has no active version")
            history = (
                (
                    await session.execute(
                        select(PackActivation)
                        .where(
                            PackActivation.kind == self.kind,
                            PackActivation.name == name,
                            PackActivation.undone_at.is_(None),
                        )
                        .order_by(PackActivation.id.desc())
                    )
                )
                .scalars()
                .all()
            )
            undo = [a for a in history if a.version == current.version]
            earlier = next((a for a in history if a.version != current.version), None)
            if earlier is None:
                raise ProblemError(
                    409, f"{self.label} {name} {current.version} has no earlier version to roll back to"
                )
            target = next(r for r in rows if r.version == earlier.version)
            if self.kind == "domain":
                await self._check_tenants_on(session, target)
            else:
                self._check_policy(target)
            now = utc_now()
            for activation in undo:
                if activation.id > earlier.id:
                    activation.undone_at, activation.undone_by = now, actor
            await activate_version(session, target, actor, record=False)
            log.info(
                "%s rolled %s %s back from %s to %s", actor, self.kind, name, current.version, target.version
            )
        await self.reload()
        return target

    async def diff(self, name: str, before: str, after: str) -> list[dict[str, Any]]:
        old, new = await self.version(name, before), await self.version(name, after)
        return diff_documents(old.content, new.content)

    async def reload(self) -> None:
        """Rebuild the running view from what is now committed."""
        async with self.db.session() as session:
            await self.store.load(session)

    async def _find(self, session: AsyncSession, name: str, version: str) -> PackVersion | None:
        query = select(PackVersion).where(
            PackVersion.kind == self.kind, PackVersion.name == name, PackVersion.version == version
        )
        return (await session.execute(query)).scalar_one_or_none()

    async def _activate(self, session: AsyncSession, row: PackVersion, actor: str) -> None:
        if row.active:
            return
        if self.kind == "domain":
            await self._check_tenants_on(session, row)
        else:
            self._check_policy(row)
        await activate_version(session, row, actor)
        log.info("%s activated %s %s %s", actor, self.kind, row.name, row.version)

    def _check_policy(self, row: PackVersion) -> None:
        """A stored policy version must still validate against the domain pack active now."""
        try:
            load_tenant(row.content, f"tenant:{row.name}@{row.version}", self.store.domain)
        except PackError as exc:
            raise ProblemError(
                409, f"tenant policy {row.name} {row.version} does not validate against the active domain pack",
                errors=field_problems(exc.problems),
            ) from None  # fmt: skip

    async def _check_tenants_on(self, session: AsyncSession, row: PackVersion) -> None:
        """Refuse a domain version that an active tenant policy, working now, would not validate against."""
        candidate = load_domain(row.content, f"domain:{row.name}@{row.version}").pack
        assert isinstance(candidate, DomainPack)

        def lookup(name: str, version: str | None) -> DomainPack | None:
            if name != candidate.domainName:
                return self.store.domain(name, version)
            return candidate if version in (None, candidate.version) else None

        policies = (
            await session.execute(
                select(PackVersion)
                .where(PackVersion.kind == "tenant", PackVersion.active.is_(True))
                .order_by(PackVersion.name)
            )
        ).scalars()
        errors: list[FieldProblem] = []
        broken: list[str] = []
        for policy in policies:
            if policy.content.get("domainName") != row.name or policy.name not in self.store.tenants:
                continue
            try:
                load_tenant(policy.content, f"tenant:{policy.name}@{policy.version}", lookup)
            except PackError as exc:
                broken.append(policy.name)
                errors += field_problems(
                    exc.problems, prefix=f"tenant policy {policy.name} {policy.version}: "
                )
        if broken:
            raise ProblemError(
                409, f"activating {row.name} {row.version} would break the active tenant "
                f"polic{'y' if len(broken) == 1 else 'ies'} of {', '.join(sorted(broken))}",
                errors=errors,
            )  # fmt: skip
