"""The interactive API reference at ``/docs``, served whole by this server.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script: it needs the
network at run time and a Content-Security-Policy that allows both. Here Swagger UI comes from the
``swagger-ui-bundle-v2`` package (installed with exops, nothing is downloaded when the page is
opened) and is started by a static file, so ``/docs`` runs under the same strict policy as every
other page (``app/api/headers.py``). ReDoc (``/redoc``, CDN only) is not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from app.api.problems import ProblemError

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
ASSETS = {
    "swagger-ui.css": (Path(str(swagger_ui_path)) / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (Path(str(swagger_ui_path)) / "swagger-ui-bundle.js", "text/javascript"),
    "docs.js": (STATIC / "docs.js", "text/javascript"),
}
"""The only files ``/docs/static/`` serves: Swagger UI itself and the script that starts it."""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>exops API reference</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/openapi.json"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/docs.js"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


@router.get("/docs/static/{name}")
async def asset(name: str) -> FileResponse:
    found = ASSETS.get(name)
    if found is None:
        raise ProblemError(404, f"no file {name}")
    path, media = found
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=86400"})
