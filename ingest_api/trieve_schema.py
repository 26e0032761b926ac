"""Trieve's ``EventTypes`` (PUT /api/analytics/events) as a small declarative schema.

The same objects validate request bodies and render the OpenAPI 3.1 JSON Schema served at
``/openapi.json``, so the document and the validator cannot drift apart. They follow Trieve's OpenAPI
(docs seed 004) field by field: required fields, enums, nested ``RequestInfo`` / ``ChunkWithPosition`` /
``PurchaseItem`` / ``SearchQueryRating``, ``nullable`` fields. Unknown fields are allowed, as in Trieve's
schema (no ``additionalProperties: false``); they stay in the landed ``payload``.

Turret adds a few limits of its own where the value becomes warehouse data (documented as
``maxLength`` in the OpenAPI document): ``event_name`` 1..200 characters, ``user_id`` at most
``max_id_length``, ``query`` / ``user_message`` at most ``max_text_length``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from turret.bounds import MAX_NAME_LENGTH
from turret.settings import Settings

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class SchemaError(ValueError):
    """The body does not match; the message names the path, e.g. ``items[2].revenue``."""


def _type_name(value: Any) -> str:
    from .events import json_type

    return json_type(value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Schema:
    """A node: ``validate(value, path)`` raises ``SchemaError``; ``openapi()`` renders JSON Schema."""

    nullable = False

    def validate(self, value: Any, path: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def openapi(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class AnyValue(Schema):
    """Any JSON value, null included (Trieve's untyped ``metadata`` / ``request_params``)."""

    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        return None

    def openapi(self) -> dict[str, Any]:
        return {"description": self.description} if self.description else {}


@dataclass
class Str(Schema):
    enum: tuple[str, ...] | None = None
    format: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise SchemaError(f"{path} must be a string, got {_type_name(value)}")
        if self.enum is not None and value not in self.enum:
            raise SchemaError(f"{path} must be one of {', '.join(self.enum)}; got {value[:60]!r}")
        if self.format == "uuid" and not _UUID_RE.match(value):
            raise SchemaError(
                f"{path} must be a UUID like 123e4567-e89b-12d3-a456-426614174000; got {value[:60]!r}"
            )
        if self.min_length is not None and len(value) < self.min_length:
            raise SchemaError(f"{path} must not be empty" if self.min_length == 1 else
                              f"{path} is {len(value)} characters; the minimum is {self.min_length}")
        if self.max_length is not None and len(value) > self.max_length:
            raise SchemaError(f"{path} is {len(value)} characters; the maximum is {self.max_length}")

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.format:
            out["format"] = self.format
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Int(Schema):
    format: str = "int64"
    minimum: int | None = None
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        # JSON Schema semantics: 3.0 is an integer, true is not.
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise SchemaError(f"{path} must be an integer, got {_type_name(value)}")
        low, high = INT_RANGES[self.format]
        if self.minimum is not None:
            low = max(low, self.minimum)
        if not low <= value <= high:
            raise SchemaError(f"{path} must be between {low} and {high}; got {value}")

    def openapi(self) -> dict[str, Any]:
        low, high = INT_RANGES[self.format]
        out: dict[str, Any] = {"type": "integer", "format": self.format,
                               "minimum": low if self.minimum is None else max(low, self.minimum),
                               "maximum": high}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Num(Schema):
    format: str = "double"
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(f"{path} must be a number, got {_type_name(value)}")

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number", "format": self.format}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Bool(Schema):
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise SchemaError(f"{path} must be a boolean, got {_type_name(value)}")

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "boolean"}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Arr(Schema):
    items: Schema = field(default_factory=AnyValue)
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise SchemaError(f"{path} must be an array, got {_type_name(value)}")
        for index, item in enumerate(value):
            self.items.validate(item, _join(path, index))

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.items.openapi()}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Map(Schema):
    """An object whose every value matches ``values`` (``additionalProperties``)."""

    values: Schema = field(default_factory=AnyValue)
    description: str = ""

    def validate(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{path} must be an object, got {_type_name(value)}")
        for key, item in value.items():
            self.values.validate(item, _join(path, key))

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "additionalProperties": self.values.openapi()}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Obj(Schema):
    properties: dict[str, Schema]
    required: tuple[str, ...] = ()
    title: str = ""

    def validate(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{path or 'request body'} must be an object, got {_type_name(value)}")
        for name in self.required:
            if name not in value:
                raise SchemaError(f"{_join(path, name)} is required")
        for name, schema in self.properties.items():
            if name in value:
                schema.validate(value[name], _join(path, name))

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if self.title:
            out["title"] = self.title
        out["required"] = list(self.required)
        out["properties"] = {name: schema.openapi() for name, schema in self.properties.items()}
        return out


@dataclass
class Nullable(Schema):
    inner: Schema

    def validate(self, value: Any, path: str) -> None:
        if value is not None:
            self.inner.validate(value, path)

    def openapi(self) -> dict[str, Any]:
        inner = self.inner.openapi()
        if isinstance(inner.get("type"), str) and "$ref" not in inner:
            out = dict(inner)
            out["type"] = [inner["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
            return out
        return {"anyOf": [inner, {"type": "null"}]}


@dataclass
class Ref(Schema):
    """A named component: validates as ``schema``, renders as ``$ref`` to ``#/components/schemas/<name>``."""

    name: str
    schema: Schema

    def validate(self, value: Any, path: str) -> None:
        self.schema.validate(value, path)

    def openapi(self) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{self.name}"}


# ---------------------------------------------------------------------------------- Trieve's components

CTR_TYPE = Ref("CTRType", Str(enum=("search", "rag", "recommendation")))
REQUEST_INFO = Ref(
    "RequestInfo",
    Obj({"request_id": Str(format="uuid"), "request_type": CTR_TYPE},
        required=("request_type", "request_id")),
)
CHUNK_WITH_POSITION = Ref(
    "ChunkWithPosition",
    Obj({"chunk_id": Str(format="uuid"), "position": Int(format="int32")}, required=("chunk_id", "position")),
)
PURCHASE_ITEM = Ref(
    "PurchaseItem", Obj({"revenue": Num(), "tracking_id": Str()}, required=("tracking_id", "revenue"))
)
SEARCH_QUERY_RATING = Ref(
    "SearchQueryRating",
    Obj({"metadata": AnyValue(), "note": Nullable(Str()), "rating": Int(format="int32")},
        required=("rating",)),
)
SEARCH_TYPES = Ref("ClickhouseSearchTypes", Str(enum=("search", "search_over_groups", "autocomplete", "rag")))
RAG_TYPES = Ref("ClickhouseRagTypes", Str(enum=("chosen_chunks", "all_chunks")))
RECOMMENDATION_TYPES = Ref("ClickhouseRecommendationTypes", Str(enum=("Chunk", "Group")))

COMPONENTS = (
    CTR_TYPE, REQUEST_INFO, CHUNK_WITH_POSITION, PURCHASE_ITEM, SEARCH_QUERY_RATING,
    SEARCH_TYPES, RAG_TYPES, RECOMMENDATION_TYPES,
)

EVENT_TYPES = (
    "view", "add_to_cart", "click", "purchase", "filter_clicked", "search", "rag", "recommendation",
)
MAX_EVENT_NAME_LENGTH = MAX_NAME_LENGTH


@functools.lru_cache(maxsize=8)
def build_variants(settings: Settings) -> dict[str, Obj]:
    """The eight ``EventTypes`` variants keyed by ``event_type``, with this server's limits."""
    event_name = Str(min_length=1, max_length=MAX_EVENT_NAME_LENGTH, description="The name of the event")
    user_id = Nullable(Str(max_length=settings.max_id_length, description="The user id"))
    location = Nullable(Str(description="The location of the event"))
    is_conversion = Nullable(Bool(description="Whether the event is a conversion event"))
    metadata = AnyValue("Any other metadata associated with the event")
    request = Nullable(REQUEST_INFO)
    results = Nullable(Arr(AnyValue()))
    text = Str(max_length=settings.max_text_length)
    # Turret extension: the id of this request, which later events name in request.request_id.
    request_id = Nullable(Str(format="uuid", description=(
        "The id of this request (Turret extension): events that follow it send it as request.request_id. "
        "Generated and answered in the TR-Request-Id header when absent."
    )))

    def tag(name: str) -> Str:
        return Str(enum=(name,))

    return {
        "view": Obj(
            {"event_name": event_name, "event_type": tag("view"), "items": Arr(Str()), "location": location,
             "metadata": metadata, "request": request, "user_id": user_id},
            required=("event_name", "items", "event_type"), title="View",
        ),
        "add_to_cart": Obj(
            {"event_name": event_name, "event_type": tag("add_to_cart"), "is_conversion": is_conversion,
             "items": Arr(Str()), "location": location, "metadata": metadata, "request": request,
             "user_id": user_id},
            required=("event_name", "items", "event_type"), title="AddToCart",
        ),
        "click": Obj(
            {"clicked_items": Nullable(CHUNK_WITH_POSITION), "event_name": event_name,
             "event_type": tag("click"),
             "is_conversion": is_conversion, "location": location, "metadata": metadata, "request": request,
             "user_id": user_id},
            required=("event_name", "event_type"), title="Click",
        ),
        "purchase": Obj(
            {"event_name": event_name, "event_type": tag("purchase"), "is_conversion": is_conversion,
             "items": Arr(PURCHASE_ITEM), "location": location, "metadata": metadata, "request": request,
             "user_id": user_id},
            required=("event_name", "items", "event_type"), title="Purchase",
        ),
        "filter_clicked": Obj(
            {"event_name": event_name, "event_type": tag("filter_clicked"), "is_conversion": is_conversion,
             "items": Map(Str()), "location": location, "request": request, "user_id": user_id},
            required=("event_name", "items", "event_type"), title="FilterClicked",
        ),
        "search": Obj(
            {"event_type": tag("search"), "latency": Nullable(Num(format="float")), "metadata": metadata,
             "query": text, "query_rating": Nullable(SEARCH_QUERY_RATING), "request_id": request_id,
             "request_params": AnyValue(),
             "results": results, "search_type": Nullable(SEARCH_TYPES), "tokens": Int(minimum=0),
             "top_score": Nullable(Num(format="float")), "user_id": user_id},
            required=("query", "tokens", "event_type"), title="Search",
        ),
        "rag": Obj(
            {"detected_hallucinations": Nullable(Arr(Str())), "event_type": tag("rag"),
             "hallucination_score": Nullable(Num()), "llm_response": Nullable(Str()), "metadata": metadata,
             "query_rating": Nullable(SEARCH_QUERY_RATING), "rag_type": Nullable(RAG_TYPES),
             "request_id": request_id, "results": results,
             "search_id": Nullable(Str(format="uuid")), "tokens": Int(minimum=0),
             "topic_id": Nullable(Str(format="uuid")), "user_id": user_id, "user_message": text},
            required=("user_message", "tokens", "event_type"), title="RAG",
        ),
        "recommendation": Obj(
            {"event_type": tag("recommendation"), "metadata": metadata,
             "negative_ids": Nullable(Arr(Str(format="uuid"))), "negative_tracking_ids": Nullable(Arr(Str())),
             "positive_ids": Nullable(Arr(Str(format="uuid"))), "positive_tracking_ids": Nullable(Arr(Str())),
             "recommendation_type": Nullable(RECOMMENDATION_TYPES), "request_id": request_id,
             "request_params": AnyValue(),
             "results": results, "top_score": Nullable(Num(format="float")), "user_id": user_id},
            required=("event_type",), title="Recommendation",
        ),
    }


def validate_event(body: Any, variants: dict[str, Obj]) -> dict[str, Any]:
    """Pick the variant by ``event_type`` (Trieve's discriminator) and validate; raise ``SchemaError``."""
    if not isinstance(body, dict):
        raise SchemaError(f"request body must be a JSON object, got {_type_name(body)}")
    if "event_type" not in body:
        raise SchemaError(f"event_type is required; one of {', '.join(EVENT_TYPES)}")
    event_type = body["event_type"]
    if not isinstance(event_type, str) or event_type not in variants:
        shown = repr(event_type[:60]) if isinstance(event_type, str) else _type_name(event_type)
        raise SchemaError(f"event_type must be one of {', '.join(EVENT_TYPES)}; got {shown}")
    variants[event_type].validate(body, "")
    return body


def openapi_components(settings: Settings) -> dict[str, Any]:
    """``components.schemas`` entries: the named Trieve types and ``EventTypes`` (a discriminated oneOf)."""
    variants = build_variants(settings)
    schemas = {ref.name: ref.schema.openapi() for ref in COMPONENTS}
    schemas["EventTypes"] = {
        "oneOf": [variant.openapi() for variant in variants.values()],
        "discriminator": {"propertyName": "event_type"},
    }
    return schemas
