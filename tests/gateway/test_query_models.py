"""Query strings read as one model (``gateway.querystring``): the values, errors and docs of FastAPI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.testclient import TestClient

from gateway.errors import install_error_handlers
from gateway.querystring import parse_query, query_openapi
from gateway.routes.contacts import DEFAULT_PAGE, MAX_PAGE, ListQuery


def app_reading_the_query_both_ways() -> FastAPI:
    """``/model`` parses with ``parse_query``; ``/declared`` declares the same parameters to FastAPI."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/model", openapi_extra=query_openapi(ListQuery))
    async def model(request: Request) -> dict[str, Any]:
        return parse_query(ListQuery, request.query_params).model_dump()

    @app.get("/declared")
    async def declared(
        status: Annotated[list[str] | None, Query(max_length=20)] = None,
        list_name: Annotated[str | None, Query(alias="list", max_length=200)] = None,
        operator: Annotated[str | None, Query(max_length=20)] = None,
        q: Annotated[str, Query(max_length=100)] = "",
        locked: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> dict[str, Any]:
        return {
            "status": status,
            "list_name": list_name,
            "operator": operator,
            "q": q,
            "locked": locked,
            "limit": limit,
            "cursor": cursor,
        }

    return app


QUERIES = [
    "",
    "limit=50",
    "status=NO_CONTESTA&status=INTERESADO&list=lista-1",
    "list=a&list=b",  # a scalar repeated: the last value, as FastAPI takes it
    "locked=true&operator=kolbi&q=ana",
    "locked=0&limit=1000&cursor=abc",
    "status=",
    "unknown=1&limit=7",
]

BAD_QUERIES = ["limit=0", "limit=1001", "limit=many", "locked=perhaps", "q=" + "x" * 101]


def test_values_are_read_as_fastapi_reads_declared_parameters() -> None:
    client = TestClient(app_reading_the_query_both_ways())
    for query in QUERIES:
        declared = client.get(f"/declared?{query}")
        model = client.get(f"/model?{query}")
        assert model.status_code == 200, query
        assert declared.status_code == 200, query
        assert model.json() == declared.json(), query


def test_bad_values_are_the_same_422_naming_the_parameter() -> None:
    client = TestClient(app_reading_the_query_both_ways())
    for query in BAD_QUERIES:
        declared = client.get(f"/declared?{query}")
        model = client.get(f"/model?{query}")
        assert model.status_code == 422, query
        assert declared.status_code == 422, query
        assert model.json()["error"]["code"] == "invalid_input"
        fields = [p["field"] for p in model.json()["error"]["problems"]]
        assert fields == [p["field"] for p in declared.json()["error"]["problems"]], query
        assert fields
        assert all(f.startswith("query.") for f in fields)


def test_openapi_lists_the_same_parameters_with_the_same_schemas() -> None:
    paths = TestClient(app_reading_the_query_both_ways()).get("/openapi.json").json()["paths"]
    declared = {p["name"]: p for p in paths["/declared"]["get"]["parameters"]}
    model = {p["name"]: p for p in paths["/model"]["get"]["parameters"]}
    assert model.keys() == declared.keys() == {"status", "list", "operator", "q", "locked", "limit", "cursor"}
    for name, parameter in model.items():
        assert parameter["in"] == "query"
        assert parameter["required"] is False
        assert parameter["schema"] == declared[name]["schema"], name
        assert parameter["description"]
