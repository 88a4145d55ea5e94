"""The OpenAPI 3.1 document of the tenant admin API, served at /api/admin/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from idp.admin.api import ACTING_SUB, bp, json_answer
from idp.oidc.client_credentials import ADMIN_API_PATH


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"description": description}
    if schema:
        found["content"] = {"application/json": {"schema": _ref(schema)}}
    return found


_SUB = {
    "name": "sub",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The account's subject identifier at this school.",
}
_ERRORS = {
    "400": _answer("Invalid request", "Error"),
    "401": _answer("Missing, invalid or expired token", "Error"),
    "403": _answer("The acting account lacks the role", "Error"),
    "404": _answer("No such account at this school", "Error"),
}
_STRING = {"type": "string"}
_NULLABLE = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _STRING, "error_description": _STRING, "current": _ref("Account")},
    },
    "Account": {
        "type": "object",
        "required": ["sub", "roles", "status", "version"],
        "properties": {
            "sub": _STRING,
            "status": {"enum": ["active", "disabled"]},
            "roles": {
                "type": "array",
                "items": {"enum": ["parent", "teacher", "student", "admin", "staff"]},
            },
            "version": {"type": "integer"},
            "login_factors_editable": {"type": "boolean"},
            "given_name": _STRING,
            "family_name": _STRING,
            "name": _STRING,
            "birthdate": {"type": ["string", "null"], "format": "date"},
            "email": _NULLABLE,
            "email_verified": {"type": "boolean"},
            "phone_number": _NULLABLE,
            "locale": _NULLABLE,  # none: the person has chosen no language
        },
    },
    "AccountSummary": {
        "type": "object",
        "properties": {
            "sub": _STRING,
            "given_name": _STRING,
            "family_name": _STRING,
            "email": _NULLABLE,
            "roles": {"type": "array", "items": _STRING},
            "status": _STRING,
        },
    },
    "Correction": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "given_name": _STRING,
            "family_name": _STRING,
            "phone_number": _NULLABLE,
            "birthdate": {"type": ["string", "null"], "format": "date"},
            "email": {
                "type": "string",
                "description": "Only for a person whose accounts are all at this school; a "
                "teacher changes only a parent's or a student's, an admin "
                "anyone's but their own (else 403 forbidden).",
            },
        },
    },
    "NewAccount": {
        "type": "object",
        "required": ["email", "given_name", "family_name", "roles"],
        "properties": {
            "email": _STRING,
            "given_name": _STRING,
            "family_name": _STRING,
            "roles": {"type": "array", "items": _STRING},
            "phone_number": _STRING,
            "birthdate": {"type": "string", "format": "date"},
        },
    },
}


def document(issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the admin API."""
    acting = {
        "name": ACTING_SUB,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": (
            "The acting account's sub; required with a client credentials token, whose "
            "account must be active at the client's school with the role the call needs."
        ),
    }
    common = [acting]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stuudium ID tenant admin API", "version": "1"},
        "servers": [{"url": f"{issuer}{ADMIN_API_PATH}"}],
        "security": [{"clientCredentials": ["admin"]}, {"personToken": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "clientCredentials": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{issuer}/token",
                            "scopes": {"admin": "The school's accounts"},
                        }
                    },
                },
                "personToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        "paths": {
            "/accounts": {
                "get": {
                    "summary": "The school's accounts (admin)",
                    "parameters": common,
                    "responses": {
                        "200": {
                            "description": "The accounts",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "accounts": {
                                                "type": "array",
                                                "items": _ref("AccountSummary"),
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **_ERRORS,
                    },
                },
                "post": {
                    "summary": "Create an account: a new person (admin)",
                    "parameters": common,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("NewAccount")}},
                    },
                    "responses": {
                        "201": _answer("Created", "Account"),
                        "409": _answer("The login e-mail is taken", "Error"),
                        **_ERRORS,
                    },
                },
            },
            "/accounts/{sub}": {
                "get": {
                    "summary": "One account with its person's data and version (admin, teacher)",
                    "parameters": [_SUB, *common],
                    "responses": {
                        "200": _answer("The account; ETag is its version", "Account"),
                        **_ERRORS,
                    },
                }
            },
            "/accounts/{sub}/person": {
                "patch": {
                    "summary": "Correct personal data (admin, teacher)",
                    "parameters": [
                        _SUB,
                        *common,
                        {
                            "name": "If-Match",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "The version read.",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Correction")}},
                    },
                    "responses": {
                        "200": {"description": "Corrected (or nothing to change)"},
                        "409": _answer(
                            "Stale version (with the current data), a login "
                            "factor of a linked person, or a taken e-mail",
                            "Error",
                        ),
                        "428": _answer("If-Match missing", "Error"),
                        **_ERRORS,
                    },
                }
            },
            "/accounts/{sub}/disable": {
                "post": {
                    "summary": "Disable an account and end its sessions (admin)",
                    "parameters": [_SUB, *common],
                    "responses": {"200": {"description": "Done"}, **_ERRORS},
                }
            },
            "/accounts/{sub}/enable": {
                "post": {
                    "summary": "Enable a disabled account (admin)",
                    "parameters": [_SUB, *common],
                    "responses": {"200": {"description": "Done"}, **_ERRORS},
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the document (public: it describes, it grants nothing)."""
    resp = json_answer(document(current_app.config["ISSUER"]))
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp
