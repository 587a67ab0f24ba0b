"""A policy the payer withdrew: its address answers 410 Gone and says where to go."""

import datetime

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from lxml import html

from index import search
from policies.models import Payer, Policy, PolicyStatus

pytestmark = pytest.mark.django_db

URL = "/policies/aetna/0198/"
# Sentences of the seed bulletin: its exclusion and its background.
RETIRED_TEXT = [
    "they are considered vocational training, and not treatment of illness or injury",
    "Work hardening programs refer to physical conditioning programs for injured "
    "workers",
]


@pytest.fixture
def withdrawn(sample_data, django_capture_on_commit_callbacks):
    """Aetna 0198, withdrawn on 1 March 2026 and replaced by a newer bulletin."""
    aetna = Payer.objects.get(slug="aetna")
    with django_capture_on_commit_callbacks(execute=True):
        newer = Policy.objects.create(
            payer=aetna,
            number="0999",
            title="Functional Restoration Programs",
            status=PolicyStatus.PUBLISHED,
        )
        policy = Policy.objects.get(number="0198")
        policy.status = PolicyStatus.WITHDRAWN
        policy.withdrawn_on = datetime.date(2026, 3, 1)
        policy.replaced_by = newer
        policy.save()
    return policy


def main_text(tree):
    return " ".join(tree.xpath("//main")[0].text_content().split())


def test_a_withdrawn_policy_is_gone_and_names_its_replacement(client, withdrawn):
    response = client.get(URL)
    assert response.status_code == 410
    tree = html.fromstring(response.content)
    text = main_text(tree)
    assert "Aetna withdrew this policy on 1 March 2026." in text
    assert tree.xpath("//main//a/@href")[:2] == [
        "/policies/aetna/0999/",
        "/payers/aetna/",
    ]
    assert tree.xpath("//main//form[@role='search']")
    assert tree.xpath("//head/meta[@name='robots']/@content") == ["noindex"]
    (description,) = tree.xpath("//head/meta[@name='description']/@content")
    assert description.startswith(
        "Aetna withdrew policy 0198, Work Hardening Programs."
    )
    for sentence in RETIRED_TEXT:
        assert sentence not in text, "the retired text is not shown"
    # Published again, the same page shows them: the check above is not vacuous.
    Policy.objects.filter(number="0198").update(
        status=PolicyStatus.PUBLISHED, withdrawn_on=None, replaced_by=None
    )
    text = main_text(html.fromstring(client.get(URL).content))
    for sentence in RETIRED_TEXT:
        assert sentence in text


def test_a_withdrawn_policy_leaves_code_pages_search_and_the_sitemap(
    client, withdrawn, django_capture_on_commit_callbacks
):
    def listed_in():
        code_page = html.fromstring(client.get("/codes/cpt/97546/").content)
        found = search.search("work hardening programs", search.Filters(kind="policy"))
        sitemap = client.get("/sitemap-policies.xml").content.decode()
        assert "/policies/aetna/0999/" in sitemap
        payer_page = html.fromstring(client.get("/payers/aetna/").content)
        return {
            "code page": URL in code_page.xpath("//main//a/@href"),
            "search": URL in [hit.url for hit in found.hits],
            "sitemap": URL in sitemap,
            "payer page": URL in payer_page.xpath("//main//a/@href"),
        }

    assert not any(listed_in().values()), listed_in()
    # Published again, it is back in each: the check above is not vacuous.
    withdrawn.status = PolicyStatus.PUBLISHED
    withdrawn.withdrawn_on = withdrawn.replaced_by = None
    with django_capture_on_commit_callbacks(execute=True):
        withdrawn.save()
    cache.clear()  # the sitemap may be an hour old
    assert all(listed_in().values()), listed_in()


def test_a_replacement_that_is_not_public_is_not_named(client, withdrawn):
    Policy.objects.filter(number="0999").update(status=PolicyStatus.DRAFT)
    tree = html.fromstring(client.get(URL).content)
    assert tree.xpath("//main//a/@href")[:1] == ["/payers/aetna/"]
    assert "/policies/aetna/0999/" not in tree.xpath("//main//a/@href")


def test_a_draft_policy_is_still_simply_not_found(client, sample_data):
    Policy.objects.filter(number="0198").update(status=PolicyStatus.DRAFT)
    response = client.get(URL)
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert "Aetna has no policy 0198 on this site." in main_text(tree)


def test_a_replacement_chain_leads_to_the_policy_in_force(client, withdrawn):
    aetna = Payer.objects.get(slug="aetna")
    latest = Policy.objects.create(
        payer=aetna, number="1100", title="Newest", status=PolicyStatus.PUBLISHED
    )
    Policy.objects.filter(number="0999").update(
        status=PolicyStatus.WITHDRAWN, replaced_by=latest
    )
    tree = html.fromstring(client.get(URL).content)
    assert tree.xpath("//main//a/@href")[0] == "/policies/aetna/1100/"
    # A loop of withdrawn policies names none, and ends.
    Policy.objects.filter(number="1100").update(
        status=PolicyStatus.WITHDRAWN, replaced_by=withdrawn
    )
    tree = html.fromstring(client.get(URL).content)
    assert tree.xpath("//main//a/@href")[0] == "/payers/aetna/"


def test_the_withdrawal_fields_are_checked_in_the_admin_form(withdrawn):
    policy = Policy.objects.get(number="0198")
    policy.replaced_by = policy
    with pytest.raises(ValidationError, match="cannot replace itself"):
        policy.full_clean()
    other_payer = Payer.objects.create(slug="harbor", name="Harbor Health")
    policy.replaced_by = Policy.objects.create(
        payer=other_payer, number="1", title="Elsewhere"
    )
    with pytest.raises(ValidationError, match="same payer"):
        policy.full_clean()
    policy.replaced_by = None
    policy.status = PolicyStatus.PUBLISHED
    with pytest.raises(ValidationError, match="Only a withdrawn policy"):
        policy.full_clean()


def test_pages_of_gone_and_missing_policies_cost_a_fixed_number_of_queries(
    client, withdrawn, django_assert_num_queries
):
    # The policy with its payer, then the replacement with its payer.
    with django_assert_num_queries(3):
        assert client.get(URL).status_code == 410
    # The policy, then its payer.
    with django_assert_num_queries(2):
        response = client.get("/policies/aetna/9999/")
    assert response.status_code == 404
    tree = html.fromstring(response.content)
    assert "Aetna has no policy 9999 on this site." in tree.findtext(".//main//p")
    links = tree.xpath("//section[@class='not-found-suggestions']//a/@href")
    assert links == ["/payers/aetna/"]


def test_the_status_column_refuses_unknown_values(sample_data):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.filter(number="0198").update(status="retired")


def test_importing_the_bulletin_again_keeps_it_withdrawn(withdrawn):
    from django.core.management import call_command

    call_command("load_sample_data", verbosity=0)
    assert Policy.objects.get(number="0198").status == PolicyStatus.WITHDRAWN
