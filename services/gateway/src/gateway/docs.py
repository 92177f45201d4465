"""The interactive API documentation (``/docs``: Swagger UI, ``/redoc``: ReDoc), served by the gateway alone.

The pages load nothing from elsewhere: the Swagger UI and ReDoc bundles are the ones the
``fastapi-offline`` package ships (Swagger UI under the Apache 2.0 licence, ReDoc under MIT), served under
``/docs/assets/``, and the few lines that start Swagger UI are a file of this package, not an inline
script. So each page carries a content security policy that allows scripts from the gateway only, and
nothing can frame it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from gateway.errors import error_response

ASSETS_PATH: Final = "/docs/assets"
"""Where the pages' scripts, styles and icon are served."""

_VENDORED = Path(fastapi_offline.__file__).resolve().parent / "static"
_OWN = Path(__file__).resolve().parent / "static"
_ASSETS: Final[dict[str, tuple[Path, str]]] = {
    "swagger-ui-bundle.js": (_VENDORED / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (_VENDORED / "swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": (_VENDORED / "redoc.standalone.js", "text/javascript; charset=utf-8"),
    "favicon.png": (_VENDORED / "favicon.png", "image/png"),
    "swagger-start.js": (_OWN / "swagger-start.js", "text/javascript; charset=utf-8"),
}

DOCS_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The pages' content security policy: the bundles style elements inline (React, styled-components) and
ReDoc searches in a worker it builds from a blob; every script comes from the gateway."""

_SWAGGER_PAGE = """<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-start.js"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets on ``app`` (made with ``docs_url=redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"

    def page(template: str, request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", ""))
        body = template.format(
            title=html.escape(app.title),
            assets=html.escape(root + ASSETS_PATH),
            openapi=html.escape(root + openapi_url),
        )
        return HTMLResponse(body, headers={"Content-Security-Policy": DOCS_POLICY})

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return page(_SWAGGER_PAGE, request)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return page(_REDOC_PAGE, request)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        found = _ASSETS.get(name)
        if found is None:
            return error_response(404, "http_404", "Recurso no encontrado.")
        path, media_type = found
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
