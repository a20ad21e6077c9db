"""Request bodies in the OpenAPI document for routes that decode their own body.

The generate routes read the raw body themselves (so every error names its field in our error body), which hides
the body from Litestar's schema generation; ``documented_body`` gives such a route an ``operation_class`` that
declares it: JSON from a msgspec Struct, or multipart/form-data from a Struct of the text fields plus file fields.
Schema-driven clients and fuzzers (schemathesis) can then build valid requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

_CAMEL = re.compile(r"(?<!^)([A-Z])")
_SCHEMA_FIELDS = set(Schema.__dataclass_fields__)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s into ``$defs`` (our structs are flat: no recursion)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve(v, defs) for v in node]
    return node


def to_schema(node: dict[str, Any]) -> Schema:
    """A JSON Schema document (as msgspec writes it) as Litestar's Schema object."""
    values: dict[str, Any] = {}
    for key, value in node.items():
        name = _CAMEL.sub(r"_\1", key).lower()
        if name not in _SCHEMA_FIELDS:
            continue
        if name == "type":
            value = [OpenAPIType(v) for v in value] if isinstance(value, list) else OpenAPIType(value)
        elif name == "properties":
            value = {k: to_schema(v) for k, v in value.items()}
        elif name in ("any_of", "one_of", "all_of"):
            value = [to_schema(v) for v in value]
        elif name == "items" and isinstance(value, dict):
            value = to_schema(value)
        values[name] = value
    return Schema(**values)


def struct_schema(struct: type[msgspec.Struct]) -> Schema:
    document = msgspec.json.schema(struct)
    return to_schema(_resolve(document, document.get("$defs", {})))


def documented_body(
    struct: type[msgspec.Struct],
    *,
    files: tuple[str, ...] = (),
    required_files: tuple[str, ...] = (),
    example: dict[str, Any] | None = None,
    headers: tuple[Parameter, ...] = (),
) -> type[Operation]:
    """An Operation class declaring the request body: JSON of ``struct``, or multipart/form-data of ``struct``'s
    fields plus the binary ``files``; ``example``: a body the served demo model accepts (fuzzers vary it field by
    field, so they reach past validation); ``headers``: request headers the route reads itself."""
    schema = struct_schema(struct)
    if files:
        schema.properties = {
            **(schema.properties or {}),
            **{name: Schema(type=OpenAPIType.STRING, format="binary") for name in files},  # type: ignore[arg-type]
        }
        schema.required = sorted({*(schema.required or []), *required_files})
        media_type = "multipart/form-data"
    else:
        media_type = "application/json"
    body = RequestBody(content={media_type: OpenAPIMediaType(schema=schema, example=example)}, required=True)

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = body
            self.parameters = [*(self.parameters or []), *headers]

    return WithBody
