"""
/api/docs/: the OpenAPI schema as a server-rendered page.

Swagger UI and Redoc load from a CDN and run inline scripts, which the site's
Content Security Policy forbids; this page needs neither. Descriptions are
Markdown (from docstrings and help texts), rendered here by `markup`.
"""

from functools import cache

from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator

from realtime.chat.api.markup import markdown_html

METHODS = ("get", "post", "put", "patch", "delete")


@cache
def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def type_of(schema: dict) -> dict:
    """`{"text", "ref"}` describing a schema: `ref` names the component to link to."""
    if not schema:
        return {"text": "any", "ref": None}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {"text": name, "ref": name}
    for combinator in ("allOf", "oneOf", "anyOf"):
        if combinator in schema:
            parts = [type_of(part) for part in schema[combinator]]
            ref = parts[0]["ref"] if len(parts) == 1 else None
            text = " or ".join(part["text"] for part in parts)
            if schema.get("nullable"):
                text += " or null"
            return {"text": text, "ref": ref}
    kind = schema.get("type", "object")
    if kind == "array":
        items = type_of(schema.get("items", {}))
        text, ref = f"array of {items['text']}", items["ref"]
    else:
        text, ref = kind + (f" ({schema['format']})" if "format" in schema else ""), None
    if schema.get("nullable"):
        text += " or null"
    return {"text": text, "ref": ref}


def body_of(content: dict | None) -> dict | None:
    if not content:
        return None
    media_type, body = next(iter(content.items()))
    return {"media_type": media_type, **type_of(body.get("schema", {}))}


def operations(schema: dict) -> list[dict]:
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            found.append(
                {
                    "id": operation.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "description": markdown_html(operation.get("description", "")),
                    "tags": operation.get("tags", []),
                    "parameters": [
                        {
                            "name": parameter["name"],
                            "in": parameter["in"],
                            "required": parameter.get("required", False),
                            "description": markdown_html(parameter.get("description", "")),
                            **type_of(parameter.get("schema", {})),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                    "request": body_of(operation.get("requestBody", {}).get("content")),
                    "responses": [
                        {
                            "status": code,
                            "description": markdown_html(response.get("description", "")),
                            "body": body_of(response.get("content")),
                        }
                        for code, response in operation.get("responses", {}).items()
                    ],
                    "security": [
                        name for option in operation.get("security", []) for name in option
                    ],
                }
            )
    return found


def components(schema: dict) -> list[dict]:
    found = []
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        required = set(component.get("required", []))
        found.append(
            {
                "name": name,
                "description": markdown_html(component.get("description", "")),
                "properties": [
                    {
                        "name": field,
                        "required": field in required,
                        "read_only": spec.get("readOnly", False),
                        "description": markdown_html(spec.get("description", "")),
                        **type_of(spec),
                    }
                    for field, spec in component.get("properties", {}).items()
                ],
            }
        )
    return found


def api_docs(request):
    """The API reference: every operation, then every schema, rendered from /api/schema/."""
    schema = api_schema()
    return render(
        request,
        "api/docs.html",
        {
            "info": {
                **schema.get("info", {}),
                "description": markdown_html(schema.get("info", {}).get("description", "")),
            },
            "operations": operations(schema),
            "components": components(schema),
        },
    )
