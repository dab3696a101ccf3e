"""drf-spectacular hooks: document the error answers every operation can give.

drf-spectacular lists only the success codes a view declares, but every operation can refuse:
400 (bad input), 401 (no or bad token), 403 (CSRF on a session write, or a forbidden action),
404 (not found, or not yours: the API never confirms what exists to outsiders), 405, and on
writes 413 (body over DATA_UPLOAD_MAX_MEMORY_SIZE) and 415 (wrong media type); 429 where a
view is throttled. Clients and the schema tests read these from the schema.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "description": ('A DRF error: {"detail": "..."}, {"<field>": ["..."]}, or a list of messages.'),
    "oneOf": [{"type": "object"}, {"type": "array", "items": {}}],
}
_COMMON = {
    "400": "Invalid input.",
    "401": "Not authenticated (send a token or a session cookie).",
    "403": "Forbidden (or a session write without its CSRF token).",
    "404": "Not found, or not visible to the caller.",
    "405": "Method not allowed.",
}
_WRITES = {
    "413": "Body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (or the upload cap).",
    "415": "Unsupported media type.",
}
_THROTTLED = {"429": "Too many requests; retry after the time in Retry-After."}


def add_error_responses(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: add the standard refusals to every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = dict(_COMMON)
            if method in ("post", "put", "patch"):
                codes.update(_WRITES)
            if path.startswith("/api/auth/"):
                codes.update(_THROTTLED)
            for code, text in codes.items():
                operation["responses"].setdefault(
                    code, {"description": text, "content": {"application/json": {"schema": ref}}}
                )
    return result
