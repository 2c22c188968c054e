"""UI pages for a tenant's two packs: its policy (managed by the tenant's admin) and its domain pack
(shared by every tenant on the domain, so only a platform admin changes it; others read its history).

Every rule — validation, what an activation must not break, how a rollback walks back — lives in
``app.admin.packs_service.PackAdmin``, exactly as the API uses it; these routes only choose the pack,
check who may change it, and show the outcome. Validation and refused uploads render the page
again with the pasted text kept, so the person can fix the document instead of pasting it again;
every other form redirects back with a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import PurePath
from typing import Annotated, Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from app.admin.packs_service import PackAdmin, field_problems
from app.api.problems import FieldProblem, ProblemError
from app.db.models import PackVersion
from app.packstore import pack_identity
from app.ui.deps import AdminPage, CheckedForm, Page, UiError, ViewerPage, field
from app.ui.render import SHOWN_PROBLEMS, back, refused, render
from packs.domain import DomainPack
from packs.loader import LoadedPack
from packs.tenant import TenantPolicyPack

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)

FILE_TYPES = {".json": "application/json", ".yaml": "application/yaml", ".yml": "application/yaml"}
"""The pack files a person may pick, and the media type that tells ``PackAdmin.read`` how to read them."""


@dataclass(frozen=True)
class Shelf:
    """One of the tenant's two packs: the URL word, the service for its kind, its name, who may change it."""

    kind: str
    admin: PackAdmin
    name: str | None
    manage: bool

    @property
    def label(self) -> str:
        return "domain pack" if self.kind == "domain" else "tenant policy"


@dataclass
class Editor:
    """The validate/upload form of one shelf after a post: the text kept and what was found."""

    kind: str
    text: str = ""
    notice: str | None = None
    error: str | None = None
    problems: list[FieldProblem] = dataclass_field(default_factory=list)
    notices: list[FieldProblem] = dataclass_field(default_factory=list)


async def _domain_name(page: Page) -> str | None:
    """The domain the tenant's policy names: the active policy, else its latest stored version."""
    policy = page.services.store.tenants.get(page.tenant_id)
    if policy is not None:
        return policy.domainName
    async with page.services.db.session() as db:
        latest = (
            await db.execute(
                select(PackVersion)
                .where(PackVersion.kind == "tenant", PackVersion.name == page.tenant_id)
                .order_by(PackVersion.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    named = latest.content.get("domainName") if latest is not None else None
    return named if isinstance(named, str) else None


async def shelf_of(page: Page, kind: str) -> Shelf:
    services = page.services
    if kind == "policy":
        admin = PackAdmin(services.db, services.store, "tenant", services.runtime.outbound.allowed_networks)
        return Shelf(kind, admin, page.tenant_id, page.can("admin"))
    if kind == "domain":
        admin = PackAdmin(services.db, services.store, "domain", services.runtime.outbound.allowed_networks)
        return Shelf(kind, admin, await _domain_name(page), page.principal.is_platform_admin)
    raise UiError(404, f"no pack kind {kind}: it is domain or policy")


async def managed_shelf(page: Page, kind: str) -> Shelf:
    """The shelf a form changes, once the person may change it (the domain pack: platform admins)."""
    shelf = await shelf_of(page, kind)
    if not shelf.manage:
        raise UiError(403, "only a platform admin manages the domain pack, which every tenant on it shares")
    if shelf.name is None:
        raise UiError(
            409, f"tenant {page.tenant_id} has no policy naming its domain: upload the policy first"
        )
    return shelf


def packs_url(page: Page, *parts: str) -> str:
    return "/".join([f"/ui/t/{page.tenant_id}/packs", *(quote(part, safe="") for part in parts)])


async def history(shelf: Shelf) -> list[PackVersion]:
    """The shelf's versions, newest first."""
    if shelf.name is None:
        return []
    return list(reversed(await shelf.admin.versions(shelf.name)))


def active_of(rows: list[PackVersion]) -> PackVersion | None:
    return next((row for row in rows if row.active), None)


async def packs_page(
    request: Request, page: Page, *, status: int = 200, editor: Editor | None = None
) -> HTMLResponse:
    shelves = []
    for kind in ("policy", "domain"):
        shelf = await shelf_of(page, kind)
        rows = await history(shelf)
        kept = editor if editor is not None and editor.kind == kind else Editor(kind)
        shelves.append({"shelf": shelf, "rows": rows, "active": active_of(rows), "editor": kept})
    return render(request, "packs.html", page, status=status, active="packs", shelves=shelves)


@router.get("/packs", response_class=HTMLResponse)
async def packs(request: Request, page: ViewerPage) -> HTMLResponse:
    """Both packs with their active version and history; the forms for what this person may change."""
    return await packs_page(request, page)


def _shown(value: Any) -> str:
    """A diff value as text: containers as YAML, scalars as JSON (so ``"1"`` and ``1`` differ)."""
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip()
    return json.dumps(value, ensure_ascii=False, default=str)


@router.get("/packs/{kind}/diff", response_class=HTMLResponse)
async def pack_diff(
    request: Request,
    page: ViewerPage,
    kind: str,
    before: Annotated[str, Query(alias="from", max_length=64)] = "",
    after: Annotated[str, Query(alias="to", max_length=64)] = "",
) -> HTMLResponse:
    """What changed between two stored versions, one row per JSONPath."""
    shelf = await shelf_of(page, kind)
    rows = await history(shelf)
    changes: list[dict[str, Any]] | None = None
    if before and after and shelf.name is not None:
        try:
            found = await shelf.admin.diff(shelf.name, before, after)
        except ProblemError as exc:
            raise UiError(exc.status, exc.detail) from None
        changes = [
            {"path": c["path"], "change": c["change"],
             "before": None if c["change"] == "added" else _shown(c["from"]),
             "after": None if c["change"] == "removed" else _shown(c["to"])}
            for c in found
        ]  # fmt: skip
    elif not (before or after):
        active = active_of(rows)
        after = active.version if active else (rows[0].version if rows else "")
        before = next((r.version for r in rows if r.version != after), "")
    return render(request, "pack_diff.html", page, active="packs", shelf=shelf, rows=rows,
                  before=before, after=after, changes=changes)  # fmt: skip


def readable(content: dict[str, Any], kind: str) -> dict[str, Any]:
    """The document with its top-level members in the pack's own order (identity first), since
    PostgreSQL's JSONB does not keep the order the author wrote; members it does not know go last."""
    model = DomainPack if kind == "domain" else TenantPolicyPack
    known = [name for name in model.model_fields if name in content]
    return {**{name: content[name] for name in known}, **{k: v for k, v in content.items() if k not in known}}


@router.get("/packs/{kind}/{version}", response_class=HTMLResponse)
async def pack_version(request: Request, page: ViewerPage, kind: str, version: str) -> HTMLResponse:
    """One stored version as YAML, with Activate and a diff against any other version."""
    shelf = await shelf_of(page, kind)
    if shelf.name is None:
        raise UiError(404, f"tenant {page.tenant_id} has no {shelf.label}")
    try:
        row = await shelf.admin.version(shelf.name, version)
    except ProblemError as exc:
        raise UiError(exc.status, exc.detail) from None
    rows = await history(shelf)
    document = yaml.safe_dump(readable(row.content, shelf.kind), sort_keys=False, allow_unicode=True)
    current = active_of(rows)
    return render(request, "pack.html", page, active="packs", shelf=shelf, row=row, rows=rows, document=document,
                  current=current)  # fmt: skip


async def posted_document(form: FormData) -> tuple[bytes, str | None, str]:
    """The pack a form sent: the chosen file (its extension picks the parser), else the pasted text.
    Returns the bytes, their media type and the text to put back in the textarea."""
    chosen = form.get("file")
    if isinstance(chosen, UploadFile) and chosen.filename:
        suffix = PurePath(chosen.filename).suffix.lower()
        media = FILE_TYPES.get(suffix)
        if media is None:
            raise ProblemError(
                415, f"a pack file ends in {', '.join(FILE_TYPES)}, not {suffix or 'no extension'}",
                errors=[FieldProblem(path="$", message=f"{chosen.filename} is not a JSON or YAML file")],
            )  # fmt: skip
        body = await chosen.read()
        return body, media, body.decode("utf-8", errors="replace")
    text = form.get("document")
    if not isinstance(text, str) or not text.strip():
        raise ProblemError(422, "choose a pack file or paste the pack",
                           errors=[FieldProblem(path="$", message="no document was sent")])  # fmt: skip
    return text.encode("utf-8"), None, text


async def _checked(shelf: Shelf, page: Page, form: FormData, editor: Editor) -> LoadedPack:
    """The posted pack fully validated for this shelf (ProblemError otherwise), its text kept in ``editor``."""
    body, media, editor.text = await posted_document(form)
    loaded = shelf.admin.read(body, media, page.tenant_id if shelf.kind == "policy" else None)
    _, name, _ = pack_identity(loaded)
    if shelf.kind == "domain" and name != shelf.name:
        raise ProblemError(
            422, f"this page manages the domain pack {shelf.name}; nothing was stored",
            errors=[FieldProblem(path="$.domainName", message=f"is {name!r}, not {shelf.name!r}")],
        )  # fmt: skip
    return loaded


@router.post("/packs/{kind}/validate", response_class=HTMLResponse)
async def validate(request: Request, page: AdminPage, form: CheckedForm, kind: str) -> HTMLResponse:
    """Validate exactly as an upload would, and list every problem; nothing is stored."""
    shelf = await managed_shelf(page, kind)
    editor = Editor(kind)
    try:
        loaded = await _checked(shelf, page, form, editor)
        editor.notices = field_problems(await shelf.admin.notices_for(loaded))
    except ProblemError as exc:
        editor.error, editor.problems = exc.detail, exc.errors
        return await packs_page(request, page, status=exc.status, editor=editor)
    editor.notice = f"the {shelf.label} is valid; nothing was stored"
    return await packs_page(request, page, editor=editor)


@router.post("/packs/{kind}/upload", response_model=None)
async def upload(
    request: Request, page: AdminPage, form: CheckedForm, kind: str
) -> HTMLResponse | RedirectResponse:
    """Store a validated version (and activate it when asked); an invalid one is listed, not stored."""
    shelf = await managed_shelf(page, kind)
    editor = Editor(kind)
    activate = bool(field(form, "activate"))
    try:
        loaded = await _checked(shelf, page, form, editor)
        row, created = await shelf.admin.upload(loaded, actor=page.principal.actor, activate=activate)
    except ProblemError as exc:
        editor.error, editor.problems = exc.detail, exc.errors
        return await packs_page(request, page, status=exc.status, editor=editor)
    what = f"{shelf.label} {row.name} {row.version}"
    message = f"stored {what}" if created else f"{what} was already stored with the same content"
    if activate:
        message += "; it is now active"
    notes = field_problems(loaded.notices)
    if notes:
        message += "; importer notes: " + "; ".join(f"{n.path}: {n.message}" for n in notes[:SHOWN_PROBLEMS])
    return back(page, packs_url(page, kind, row.version), notice=message)


@router.post("/packs/{kind}/rollback")
async def rollback(page: AdminPage, form: CheckedForm, kind: str) -> RedirectResponse:
    """Activate again the version that was active before the current one."""
    shelf = await managed_shelf(page, kind)
    assert shelf.name is not None
    try:
        row = await shelf.admin.rollback(shelf.name, page.principal.actor)
    except ProblemError as exc:
        return refused(page, packs_url(page), exc)
    return back(page, packs_url(page), notice=f"rolled the {shelf.label} {row.name} back to {row.version}")


@router.post("/packs/{kind}/{version}/whatif", response_class=HTMLResponse)
async def what_if(
    request: Request, page: AdminPage, form: CheckedForm, kind: str, version: str
) -> HTMLResponse:
    """Before activating: replay the tenant's newest finished cases through this stored version (no side
    effects, ``app.evals.whatif``) and show the page with every decision that would change."""
    from app.evals.whatif import DEFAULT_LAST, MAX_LAST, run_what_if
    from app.runtime import ConfigurationError
    from packs.problems import PackError

    shelf = await shelf_of(page, kind)
    if shelf.name is None:
        raise UiError(404, f"tenant {page.tenant_id} has no {shelf.label}")
    try:
        row = await shelf.admin.version(shelf.name, version)
    except ProblemError as exc:
        raise UiError(exc.status, exc.detail) from None
    text = str(field(form, "last") or DEFAULT_LAST)
    last = min(max(int(text), 1), MAX_LAST) if text.isdigit() else DEFAULT_LAST
    services = page.services
    report, error = None, None
    try:
        report = await run_what_if(
            services.db, services.runtime, services.store, page.tenant_id, dict(row.content), last=last
        )
    except PackError as exc:
        error = "; ".join(f"{p.path}: {p.message}" for p in exc.problems[:SHOWN_PROBLEMS])
    except (ConfigurationError, LookupError) as exc:
        error = str(exc)
    rows = await history(shelf)
    document = yaml.safe_dump(readable(row.content, shelf.kind), sort_keys=False, allow_unicode=True)
    return render(request, "pack.html", page, active="packs", shelf=shelf, row=row, rows=rows, document=document,
                  current=active_of(rows), whatif=report, whatif_error=error, whatif_last=last)  # fmt: skip


@router.post("/packs/{kind}/{version}/activate")
async def activate(page: AdminPage, form: CheckedForm, kind: str, version: str) -> RedirectResponse:
    """Make a stored version the active one; refusals (e.g. a tenant it would break) are listed."""
    shelf = await managed_shelf(page, kind)
    assert shelf.name is not None
    here = packs_url(page, kind, version)
    try:
        row = await shelf.admin.activate(shelf.name, version, page.principal.actor)
    except ProblemError as exc:
        return refused(page, here, exc)
    return back(page, here, notice=f"{shelf.label} {row.name} {row.version} is now active")
