"""The request bodies of the OneRoster 1.2 gradebook PUTs, as the official OpenAPI document
defines them (OneRoster Gradebook Service 1.2, IMS Final Release 2022-09-19, components
SingleCategoryDType, SingleLineItemDType, SingleResultDType and the GUIDRef types they use;
copy read at agencyenterprise/oneroster-aipi openAPI/gradebookservice_openapi3_v1p0.yaml,
commit ab938e5). Transcribed as JSON Schema for the tests; ``additionalProperties: false``
and the required lists are the spec's own."""

from __future__ import annotations

from typing import Any

DATE_TIME = {"type": "string", "format": "date-time"}
STATUS = {"type": "string", "enum": ["active", "tobedeleted"]}
BOOL_STRING = {"type": "string", "enum": ["true", "false"]}


def guid_ref(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["href", "sourcedId", "type"],
        "properties": {
            "href": {"type": "string", "format": "uri"},
            "sourcedId": {"type": "string"},
            "type": {"type": "string", "enum": [kind]},
        },
        "additionalProperties": False,
    }


CATEGORY = {
    "type": "object",
    "required": ["sourcedId", "status", "dateLastModified", "title"],
    "properties": {
        "sourcedId": {"type": "string"},
        "status": STATUS,
        "dateLastModified": DATE_TIME,
        "metadata": {"type": "object"},
        "title": {"type": "string"},
        "weight": {"type": "number"},
    },
    "additionalProperties": False,
}

LINE_ITEM = {
    "type": "object",
    "required": [
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "assignDate",
        "dueDate",
        "class",
        "school",
        "category",
    ],
    "properties": {
        "sourcedId": {"type": "string"},
        "status": STATUS,
        "dateLastModified": DATE_TIME,
        "metadata": {"type": "object"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "assignDate": DATE_TIME,
        "dueDate": DATE_TIME,
        "class": guid_ref("class"),
        "school": guid_ref("org"),
        "category": guid_ref("category"),
        "gradingPeriod": guid_ref("academicSession"),
        "academicSession": guid_ref("academicSession"),
        "scoreScale": guid_ref("scoreScale"),
        "resultValueMin": {"type": "number"},
        "resultValueMax": {"type": "number"},
        "learningObjectiveSet": {"type": "array"},
    },
    "additionalProperties": False,
}

RESULT = {
    "type": "object",
    "required": [
        "sourcedId",
        "status",
        "dateLastModified",
        "lineItem",
        "student",
        "scoreStatus",
        "scoreDate",
    ],
    "properties": {
        "sourcedId": {"type": "string"},
        "status": STATUS,
        "dateLastModified": DATE_TIME,
        "metadata": {"type": "object"},
        "lineItem": guid_ref("lineItem"),
        "student": guid_ref("user"),
        "class": guid_ref("class"),
        "scoreScale": guid_ref("scoreScale"),
        "scoreStatus": {
            "anyOf": [
                {"type": "string", "pattern": "(ext:)[a-zA-Z0-9\\.\\-_]+"},
                {
                    "type": "string",
                    "enum": [
                        "exempt",
                        "fully graded",
                        "not submitted",
                        "partially graded",
                        "submitted",
                    ],
                },
            ]
        },
        "score": {"type": "number"},
        "textScore": {"type": "string"},
        "scoreDate": {"type": "string", "format": "date"},
        "comment": {"type": "string"},
        "learningObjectiveSet": {"type": "array"},
        "inProgress": BOOL_STRING,
        "incomplete": BOOL_STRING,
        "late": BOOL_STRING,
        "missing": BOOL_STRING,
    },
    "additionalProperties": False,
}


def single(envelope: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [envelope],
        "properties": {envelope: schema},
        "additionalProperties": False,
    }


BODIES = {
    "category": single("category", CATEGORY),
    "lineItem": single("lineItem", LINE_ITEM),
    "result": single("result", RESULT),
}
