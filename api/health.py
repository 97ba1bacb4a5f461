"""The API itself: its OpenAPI document, a reference page rendered from it (/docs) and
/health (is the server up, which schema, which recommender serves)."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.schemas import Health
from api.shared import Context
from services import catalog
from services.recsys.serving import active_run

router = APIRouter()


# FastAPI's own document would answer without the token; this one has the app's dependencies.
@router.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


# FastAPI's Swagger page loads its scripts from a CDN and fetches the document without the
# token; this page is rendered here from the same document, behind the same token, offline.
@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def reference(request: Request) -> HTMLResponse:
    return HTMLResponse(reference_page(request.app.openapi()))


def reference_page(document: dict) -> str:
    """Every operation of an OpenAPI document as one HTML page: method, path, summary,
    parameters (where, type, required) and the request and response schemas' names."""
    escape = html.escape
    info = document.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "code{background:#f3f3f3;padding:0 .2em}td,th{padding:.2em .6em;text-align:left}</style>",
        f"</head><body><h1>{title}</h1>",
        f"<p>{escape(info.get('description', ''))} Every route needs "
        "<code>Authorization: Bearer &lt;token&gt;</code> when the server has one; the "
        "machine-readable document is <code>/api/openapi.json</code>.</p>",
    ]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(
                f"<h2><code>{escape(method.upper())} /api{escape(path)}</code></h2>"
                f"<p>{escape(operation.get('summary', ''))}</p>"
            )
            if operation.get("description"):
                parts.append(f"<p>{escape(operation['description'])}</p>")
            parameters = operation.get("parameters", [])
            if parameters:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>")
                for parameter in parameters:
                    schema = parameter.get("schema", {})
                    kind = schema.get("type") or " or ".join(
                        str(s.get("type", "")) for s in schema.get("anyOf", [])
                    )
                    parts.append(
                        f"<tr><td><code>{escape(parameter['name'])}</code></td>"
                        f"<td>{escape(parameter.get('in', ''))}</td><td>{escape(kind)}</td>"
                        f"<td>{'required' if parameter.get('required') else ''}</td></tr>"
                    )
                parts.append("</table>")
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                parts.append(f"<p>Body ({escape(media)}): {escape(_schema_name(content))}</p>")
            for status, answer in operation.get("responses", {}).items():
                shown = [_schema_name(c) for c in answer.get("content", {}).values()]
                parts.append(
                    f"<p>{escape(status)}: {escape(answer.get('description', ''))}"
                    f"{escape(' ' + ', '.join(shown) if shown else '')}</p>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def _schema_name(content: dict) -> str:
    schema = content.get("schema", {})
    reference = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
    return reference.rsplit("/", 1)[-1] or str(schema.get("type", ""))


@router.get("/health")
def health(ctx: Context) -> Health:
    engine = ctx.engine
    return Health(
        status="ok",
        schema_version=catalog.schema(engine=engine),
        active_recommender=active_run(engine=engine),
    )
