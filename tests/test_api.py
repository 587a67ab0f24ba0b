"""
The read-only JSON API under /api/v1/ (carecodes/api/), on the sample data.

Every endpoint is read as a client program would, with its queries counted; the
OpenAPI document is validated and then fuzzed in-process by schemathesis, which must
never get a server error.
"""

import re
import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from carecodes.wsgi import application
from policies.models import Payer, Policy, PolicyStatus
from procedures.models import Code, Procedure

pytestmark = pytest.mark.django_db

API = "/api/v1"
ADDRESS = re.compile(r"^https?://")


@pytest.fixture
def get(client, django_assert_num_queries):
    """GET an API address in exactly ``queries`` queries: its JSON and response."""

    def fetch(path, queries, status=200, **extra):
        with django_assert_num_queries(queries):
            response = client.get(f"{API}{path}", **extra)
        assert response.status_code == status, response.content
        assert response["Content-Type"].startswith("application/json")
        return response.json(), response

    return fetch


def search_queries(sqlite: int, postgresql: int) -> int:
    """The search engine's statements differ by backend (FTS5 or tsvector)."""
    return postgresql if connection.vendor == "postgresql" else sqlite


# The root, errors and methods.


def test_the_root_says_where_the_schema_and_docs_are(get, sample_data):
    body, _ = get("/", 0)
    assert body["openapi"] == "http://testserver/api/v1/openapi.json"
    assert body["docs"] == "http://testserver/api/v1/docs"


def test_an_address_the_api_does_not_have_is_a_json_404(get, sample_data):
    body, _ = get("/codes/cpt/97546/", 0, status=404)
    assert "/api/v1/docs" in body["detail"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_it_refuses_every_method_but_get_and_head(client, sample_data, method):
    response = getattr(client, method)(f"{API}/codes/cpt/97546")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert "read-only" in response.json()["detail"]
    assert Code.objects.filter(code="97546").exists()


def test_head_answers_like_get_without_a_body(client, sample_data):
    got = client.get(f"{API}/codes/cpt/97546")
    head = client.head(f"{API}/codes/cpt/97546")
    assert head.status_code == 200
    assert head.content == b""
    for header in ("Content-Type", "Cache-Control", "Access-Control-Allow-Origin"):
        assert head[header] == got[header]


def test_answers_are_public_cacheable_and_open_to_other_sites(get, sample_data):
    _, response = get("/payers", 2)
    assert "public" in response["Cache-Control"]
    assert "max-age=300" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["ETag"]
    assert response["X-Robots-Tag"] == "noindex"


def test_a_nul_character_is_a_json_400(client, sample_data):
    response = client.get(f"{API}/search", {"q": "knee\x00"})
    assert response.status_code == 400
    assert "character" in response.json()["detail"]


# Codes.


def test_codes_are_listed_in_code_order_a_page_at_a_time(get, sample_data):
    body, _ = get("/codes?system=cpt&page_size=2", 2)
    assert [item["code"] for item in body["items"]] == ["97537", "97545"]
    assert body["count"] == 3
    assert body["pages"] == 2
    assert (
        body["next"] == "http://testserver/api/v1/codes?system=cpt&page_size=2&page=2"
    )
    assert body["previous"] is None
    body, _ = get("/codes?system=cpt&page_size=2&page=2", 2)
    assert [item["code"] for item in body["items"]] == ["97546"]
    assert body["next"] is None
    assert body["previous"].endswith("page=1")


def test_a_page_past_the_end_is_empty(get, sample_data):
    body, _ = get("/codes?system=cpt&page=9", 1)
    assert body["items"] == []
    assert body["count"] == 3
    assert body["previous"].endswith("page=1")


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=10001",
        "page=99999999999999999999999",
        "page=two",
        "page_size=101",
        "page_size=0",
        "system=icd-9",
    ],
)
def test_bad_paging_or_filters_are_a_422_in_plain_words(get, sample_data, query):
    body, _ = get(f"/codes?{query}", 0, status=422)
    name = query.split("=")[0]
    assert body["detail"].startswith(f"query.{name}: ")
    assert body["errors"][0]["location"] == f"query.{name}"


def test_a_code_is_found_in_any_spelling_the_pages_accept(get, sample_data):
    body, _ = get("/codes/ICD-10-CM/s52501a", 3)
    assert body["code"] == "S52.501A"
    assert body["system"] == "icd-10-cm"
    assert body["system_label"] == "ICD-10-CM"
    assert body["descriptor"].startswith("Unspecified fracture of the lower end")
    assert body["url"] == "http://testserver/codes/icd-10-cm/S52.501A/"
    assert body["section"]["name"] == "Injuries to the elbow and forearm"
    assert body["links"]["writeup"] is None
    assert body["links"]["policies"] == (
        "http://testserver/api/v1/codes/icd-10-cm/S52.501A/policies"
    )


def test_an_add_on_code_names_its_primary_code_and_its_write_up(get, sample_data):
    body, _ = get("/codes/cpt/97546", 3)
    assert body["is_addon"] is True
    assert [c["code"] for c in body["primary_codes"]] == ["97545"]
    assert body["links"]["writeup"] == "http://testserver/api/v1/writeups/cpt/97546"
    primary, _ = get("/codes/cpt/97545", 3)
    assert [c["code"] for c in primary["addon_codes"]] == ["97546"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/codes/cpt/99999", "CPT 99999 is a valid code, but it is not on this site"),
        ("/codes/icd-9/250.00", "“icd-9” is not a code system this site knows."),
        ("/codes/cpt/E11.9", "“E11.9” is not a CPT code"),
        ("/codes/cpt/99999/policies", "CPT 99999 is a valid code"),
        ("/writeups/cpt/97545", "CPT 97545 has no published write-up on this site."),
        ("/policies/aetna/9999", "Aetna has no policy 9999 on this site."),
        ("/policies/nobody/0198", "“nobody” is not a payer this site has."),
        ("/payers/nobody", "“nobody” is not a payer this site has."),
    ],
)
def test_what_the_site_does_not_have_is_a_404_in_plain_words(
    client, sample_data, path, message
):
    response = client.get(f"{API}{path}")
    assert response.status_code == 404
    assert message in response.json()["detail"]


def test_a_category_lists_the_codes_under_it(get, sample_data):
    category = Code.objects.create(
        system="icd-10-cm",
        code="Z87.82",
        descriptor="Personal history of other (healed) physical injury and trauma",
        is_billable=False,
    )
    Code.objects.filter(code__in=["Z87.828", "Z87.820"]).update(parent=category)
    body, _ = get("/codes/icd-10-cm/Z87.82/children", 3)
    assert [item["code"] for item in body["items"]] == ["Z87.820", "Z87.828"]
    body, _ = get("/codes/icd-10-cm/Z87.820/children", 2)
    assert body["items"] == []
    assert body["count"] == 0
    child, _ = get("/codes/icd-10-cm/Z87.820", 3)
    assert child["parent"]["code"] == "Z87.82"
    assert (
        child["parent"]["api_url"] == "http://testserver/api/v1/codes/icd-10-cm/Z87.82"
    )


def test_a_code_lists_the_policies_that_name_it(get, sample_data):
    body, _ = get("/codes/cpt/97546/policies", 2)
    [mention] = body["items"]
    assert mention["policy"]["number"] == "0198"
    assert mention["policy"]["payer"]["name"] == "Aetna"
    assert mention["listed"] is True
    assert mention["row"]["display"] == "97546"
    assert mention["coverage"] == "not-covered"


def test_a_code_reached_only_through_a_range_names_the_range(get, sample_data):
    body, _ = get("/codes/icd-10-cm/S52.501A/policies", 2)
    [mention] = body["items"]
    assert mention["listed"] is False
    assert mention["row"]["display"] == "S00.00X+ - T88.9XX+"
    assert mention["row"]["is_range"] is True
    assert mention["row"]["seventh_character"] is True
    assert mention["coverage_label"] == "Not covered"
    assert mention["heading"].startswith("ICD-10 codes not covered")


def test_a_code_lists_its_similar_codes_with_reasons(get, sample_data):
    body, _ = get("/codes/cpt/97546/similar?page_size=2", 2)
    first = body["items"][0]
    assert first["rank"] == 1
    assert first["code"]["code"] == "97545"
    assert first["reasons"][0] == {
        "kind": "addon",
        "text": "Primary code of this add-on code",
    }
    assert body["count"] > 2
    assert body["next"].endswith("page_size=2&page=2")


# Write-ups.


def test_only_published_write_ups_are_listed_and_shown(get, sample_data):
    draft_code = Code.objects.get(system="cpt", code="97545")
    Procedure.objects.create(
        code=draft_code, title="Work hardening, first two hours", summary="Draft."
    )
    body, _ = get("/writeups", 2)
    assert [item["code"]["code"] for item in body["items"]] == ["97546"]
    get("/writeups/cpt/97545", 1, status=404)


def test_a_write_up_gives_each_section_as_markdown_and_sanitised_html(get, sample_data):
    procedure = Procedure.objects.get(code__code="97546")
    procedure.summary = (
        "Builds **strength**.<script>alert(1)</script> [more](javascript:alert(2))"
    )
    procedure.save()
    body, _ = get("/writeups/cpt/97546", 1)
    assert body["title"] == procedure.title
    summary = body["sections"][0]
    assert summary["name"] == "summary"
    assert summary["heading"] == "Summary"
    assert summary["markdown"] == procedure.summary
    assert "<strong>strength</strong>" in summary["html"]
    assert "<script" not in summary["html"]
    assert "javascript:" not in summary["html"]
    headings = [section["heading"] for section in body["sections"]]
    assert "Risks and complications" in headings


# Policies and payers.


def test_policies_are_listed_and_filtered_by_payer(get, sample_data):
    body, _ = get("/policies", 2)
    assert [(p["payer"]["slug"], p["number"]) for p in body["items"]] == [
        ("aetna", "0198")
    ]
    body, _ = get("/policies?payer=aetna", 3)
    assert body["count"] == 1
    body, _ = get("/policies?payer=nobody", 1, status=422)
    assert body["detail"] == "query.payer: “nobody” is not a payer this site has."


def test_a_policy_gives_its_code_groups_with_coverage_and_ranges(get, sample_data):
    body, _ = get("/policies/aetna/0198", 5)
    assert body["title"] == "Work Hardening Programs"
    assert body["status"] == "published"
    assert body["sections"][0]["heading"] == "Scope of policy"
    assert body["sections"][0]["html"].startswith("<p>")
    groups = {group["heading"]: group for group in body["code_groups"]}
    cpt = next(g for g in body["code_groups"] if g["system"] == "cpt")
    assert cpt["coverage"] == "not-covered"
    assert {row["display"] for row in cpt["codes"]} >= {"97545", "97546"}
    ranges = [
        row for group in groups.values() for row in group["codes"] if row["is_range"]
    ]
    assert any(row["display"] == "S00.00X+ - T88.9XX+" for row in ranges)
    assert body["references"]
    assert len(body["references"]) == 12
    assert body["references"][0].startswith("American Occupational Therapy")


def test_a_withdrawn_policy_is_gone_with_a_410(get, sample_data):
    Policy.objects.filter(number="0198").update(status=PolicyStatus.WITHDRAWN)
    body, _ = get("/policies/aetna/0198", 1, status=410)
    assert body["detail"] == "Aetna withdrew policy 0198."
    assert body["replaced_by"] is None
    listed, _ = get("/policies", 1)
    assert listed["items"] == []
    old = Policy.objects.get(number="0198")
    new = Policy.objects.create(
        payer=old.payer, number="0999", title="Return to work", status="published"
    )
    Policy.objects.filter(pk=old.pk).update(replaced_by=new)
    body, _ = get("/policies/aetna/0198", 3, status=410)
    assert body["replaced_by"]["api_url"] == (
        "http://testserver/api/v1/policies/aetna/0999"
    )
    mentions, _ = get("/codes/cpt/97546/policies", 2)
    assert mentions["items"] == []


def test_payers_are_listed_with_their_published_policies(get, sample_data):
    body, _ = get("/payers", 2)
    [aetna] = body["items"]
    assert aetna["name"] == "Aetna"
    assert aetna["policy_count"] == 1
    assert aetna["policies_api_url"] == (
        "http://testserver/api/v1/policies?payer=aetna"
    )
    Payer.objects.filter(slug="aetna").update(
        description="A **national** insurer.<script>alert(1)</script>"
    )
    detail, _ = get("/payers/aetna", 1)
    assert detail["website"].startswith("https://")
    assert detail["description"]["name"] == "description"
    assert detail["policy_count"] == 1
    description = detail["description"]
    assert description["markdown"].startswith("A **national** insurer.")
    assert "<strong>national</strong>" in description["html"]
    assert "<script" not in description["html"]


# Search and suggestions.


def test_search_finds_the_write_up_the_code_and_the_policy(get, sample_data):
    body, _ = get("/search?q=work+hardening", search_queries(4, 2))
    kinds = {hit["kind"] for hit in body["hits"]}
    assert kinds == {"code", "write-up", "policy"}
    assert body["counts"]["write-up"] == 1
    writeup = next(hit for hit in body["hits"] if hit["kind"] == "write-up")
    assert writeup["url"] == "http://testserver/codes/cpt/97546/"
    assert "<mark>" in writeup["snippet"]


def test_search_names_the_code_a_query_names_exactly(get, sample_data):
    body, _ = get("/search?q=97546", search_queries(2, 2))
    assert body["exact"] == "http://testserver/codes/cpt/97546/"
    assert body["hits"][0]["code"] == "97546"


def test_search_takes_the_pages_filters(get, sample_data):
    body, _ = get(
        "/search?q=work+hardening&kind=policy&payer=aetna", search_queries(5, 3)
    )
    assert [hit["kind"] for hit in body["hits"]] == ["policy"]


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("", "query.q"),
        ("q=", "query.q"),
        (f"q={'a' * 201}", "query.q"),
        ("q=knee&kind=page", "query.kind"),
        ("q=knee&payer=no%20such", "query.payer"),
        ("q=knee&page_size=51", "query.page_size"),
    ],
)
def test_bad_search_parameters_are_a_422(get, sample_data, query, location):
    body, _ = get(f"/search?{query}", 0, status=422)
    assert body["errors"][0]["location"] == location


def test_suggest_completes_what_has_been_typed(get, sample_data):
    body, _ = get("/suggest?q=work+har", search_queries(2, 2))
    labels = [item["label"] for item in body["suggestions"]]
    assert "Work Hardening/Conditioning; Each Additional Hour" in labels
    body, _ = get("/suggest?q=w", 0)
    assert body["suggestions"] == []


# The rate limit.


@pytest.fixture
def ten_seconds_into_a_minute(monkeypatch):
    """The clock the rate limit reads, stopped 10 s into one of its windows."""
    monkeypatch.setattr("carecodes.api.base.time.time", lambda: 60 * 28_000_000 + 10.0)


def test_a_client_past_the_rate_limit_gets_429_with_retry_after(
    client, sample_data, settings, ten_seconds_into_a_minute
):
    settings.API_RATE_LIMIT = 3
    for _ in range(3):
        assert client.get(f"{API}/payers").status_code == 200
    refused = client.get(f"{API}/payers")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "50"
    assert "at most 3 a minute" in refused.json()["detail"]
    # Another address has its own count; X-Forwarded-For is not trusted by default.
    assert client.get(f"{API}/payers", REMOTE_ADDR="192.0.2.7").status_code == 200
    spoofed = client.get(f"{API}/payers", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert spoofed.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(
    client, sample_data, settings, ten_seconds_into_a_minute
):
    settings.API_RATE_LIMIT = 1
    settings.API_TRUSTED_PROXIES = 1
    first = {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.1"}
    second = {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.2"}
    assert client.get(f"{API}/payers", **first).status_code == 200
    assert client.get(f"{API}/payers", **first).status_code == 429
    assert client.get(f"{API}/payers", **second).status_code == 200


# The OpenAPI document and the docs page.


def test_the_openapi_document_is_valid_and_lists_every_endpoint(client, sample_data):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert set(document["paths"]) == {
        f"{API}/codes",
        f"{API}/codes/{{system}}/{{code}}",
        f"{API}/codes/{{system}}/{{code}}/children",
        f"{API}/codes/{{system}}/{{code}}/policies",
        f"{API}/codes/{{system}}/{{code}}/similar",
        f"{API}/writeups",
        f"{API}/writeups/{{system}}/{{code}}",
        f"{API}/policies",
        f"{API}/policies/{{payer}}/{{number}}",
        f"{API}/payers",
        f"{API}/payers/{{slug}}",
        f"{API}/search",
        f"{API}/suggest",
    }
    for path, operations in document["paths"].items():
        assert set(operations) == {"get"}, path
        responses = operations["get"]["responses"]
        if "{" in path:
            assert "404" in responses, path
        assert responses["429"]["headers"]["Retry-After"], path


def test_the_docs_page_loads_only_the_sites_own_files(client, sample_data):
    response = client.get(f"{API}/docs")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    # Every script is a file of the site's own (the CSP refuses inline ones); the
    # settings block is JSON, which the browser does not run.
    for attributes in re.findall(r"<script([^>]*)>", page):
        assert "src=" in attributes or 'type="application/json"' in attributes
    assert "/api/v1/openapi.json" in page


# Fuzzing: schemathesis generates requests from the OpenAPI document and sends them
# to the WSGI application in this process. Examples are derived from a fixed seed, so
# every run sends the same requests.
FUZZ_EXAMPLES = 20
# Invalid requests, and requests for real codes and policies, find less that is new.
FUZZ_EXAMPLES_MORE = 10
# Real codes and policies, so that the generated query parameters reach the work
# done past the lookup, not only the 404.
KNOWN = {
    "system": "cpt",
    "code": "97546",
    "payer": "aetna",
    "number": "0198",
    "slug": "aetna",
}


@pytest.fixture
def connection_kept_open():
    """
    Keep the test's database connection across WSGI requests, as Django's test client
    does: the handler closes old connections when a request starts and finishes,
    which would end the test's transaction.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_generated_requests_never_get_a_server_error(
    sample_data, settings, connection_kept_open
):
    settings.API_RATE_LIMIT = 0
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", application)
    runs = 0
    started = time.process_time()
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [parameter.name for parameter in operation.path_parameters]
        strategies = [
            (operation.as_strategy(GenerationMode.POSITIVE), FUZZ_EXAMPLES),
            (operation.as_strategy(GenerationMode.NEGATIVE), FUZZ_EXAMPLES_MORE),
        ]
        if names:
            known = {name: KNOWN[name] for name in names}
            strategies.append(
                (operation.as_strategy(path_parameters=known), FUZZ_EXAMPLES_MORE)
            )
        for strategy, examples in strategies:

            @given(case=strategy)
            @hypothesis_settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case):
                nonlocal runs
                runs += 1
                response = case.call()
                assert response.status_code < 500, case.as_curl_command()

            try:
                no_server_error()
            except Unsatisfiable:
                # An operation whose every parameter takes any text has no invalid
                # request to make.
                assert strategy is strategies[1][0]
    assert runs >= 13 * 20
    assert time.process_time() - started < 60
