"""Request bodies as msgspec Structs, decoded one field at a time so that every error names its field.

A route declares ``data: T`` with ``dto=BodyDTO[T]``: Litestar hands the body to ``BodyDTO`` (the raw JSON bytes,
or a form it has parsed) and documents it in the OpenAPI document from ``T`` itself. Each field is decoded on its
own, so an error is known to be that field's (INVALID_PARAMETERS naming it) without reading msgspec's message, which
is only passed on as the reason:

* JSON: strict, as msgspec decodes JSON into ``T`` (a number in a string is refused, ``1e999`` is out of range);
* a form (multipart or urlencoded): text stripped, empty text absent (HTML forms send every field), numbers parsed
  from their text, files passed through.

An unknown field and a missing required one are named too. What Litestar checks itself (a declared header, a body
that is missing) arrives as its ValidationException, which ``errors`` maps onto the same error body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request
from litestar.dto import MsgspecDTO
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.infra.images import FIELD as IMAGE_FIELD
from visualizr.frontend.infra.images import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference, Schema
    from litestar.typing import FieldDefinition

T = TypeVar("T", bound=msgspec.Struct)


def _typed(struct: type[T], members: Mapping[str, Any], convert: Callable[[Any, Any], Any]) -> T:
    """``struct`` from ``{field name as sent: member}``, each member turned into its field's type by ``convert``."""
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    values: dict[str, Any] = {}
    for name, member in members.items():
        field = fields.get(name)
        if field is None:
            raise InvalidParametersError(f"Unknown field {name!r}", {"field": name, "reason": "unknown field"})
        try:
            values[field.name] = convert(member, field.type)
        except msgspec.DecodeError as exc:  # a ValidationError too
            reason = str(exc)
            raise InvalidParametersError(
                f"Invalid value for {name!r}: {reason}", {"field": name, "reason": reason}
            ) from None
    for name, field in fields.items():
        if field.required and field.name not in values:
            raise InvalidParametersError(f"{name} is required", {"field": name, "reason": "required"})
    return struct(**values)


def decode_json(body: bytes, struct: type[T]) -> T:
    """A JSON object as ``struct``, strictly."""
    try:
        members = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, RecursionError) as exc:  # the latter: a member nested too deeply to skip over
        reason = str(exc)
        raise InvalidParametersError(f"Invalid request body: {reason}", {"field": None, "reason": reason}) from None
    return _typed(struct, members, lambda raw, typ: msgspec.json.decode(raw, type=typ))


def convert_form(form: Mapping[str, Any], struct: type[T]) -> T:
    """A parsed form (``{name: text | file | [repeated values]}``) as ``struct``."""
    present = {name: value.strip() if isinstance(value, str) else value for name, value in form.items()}
    return _typed(struct, {name: v for name, v in present.items() if v != ""}, partial(msgspec.convert, strict=False))


class BodyDTO(MsgspecDTO[T]):
    """A route's ``data``, decoded by ``decode_json`` or ``convert_form`` and documented as ``T`` (MsgspecDTO itself
    would decode leniently and document a generated copy of ``T``)."""

    def decode_bytes(self, value: bytes) -> T:
        return decode_json(value, self.model_type)

    def decode_builtins(self, value: dict[str, Any]) -> T:
        return convert_form(value, self.model_type)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        return schema_creator.for_field_definition(field_definition)


MULTIPART = "multipart/form-data"
FORM_TYPES = (MULTIPART, "application/x-www-form-urlencoded")  # the latter cannot carry a file: 400 naming it
FORM_OVERHEAD_BYTES = 1024 * 1024  # the text fields and part headers around the pictures


async def read_form(request: Request[Any, Any, Any]) -> None:
    """The ``before_request`` of the routes that take pictures (from-image, characters): parses the form so that
    its failures are ours: a content type that is no form, a body over the limit (answered as the image's),
    malformed parts and text that is not UTF-8 are INVALID_PARAMETERS."""
    if request.content_type[0] not in FORM_TYPES:
        raise InvalidParametersError(
            f"Send the request as {MULTIPART}", {"field": None, "content_type": request.content_type[0]}
        )
    try:
        await request.form()
    except RequestEntityTooLarge:
        raise InvalidParametersError(
            f"Request body too large: the image may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
            {"field": IMAGE_FIELD, "max_bytes": MAX_IMAGE_BYTES},
        ) from None
    except (ClientException, UnicodeDecodeError) as exc:
        reason = exc.detail if isinstance(exc, ClientException) else "a text field is not UTF-8"
        raise InvalidParametersError(f"Malformed multipart body: {reason}", {"field": None, "reason": reason}) from None
