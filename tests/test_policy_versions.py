"""
Policy versions: the seed bulletin, then a revised copy of it, show exactly the four
changes the copy makes, on the changes page, the code pages and the Atom feeds.

The revised copy (tests/data/revised-policy-aetna-0198-work-hardening.txt) moves
97546 to a group covered when criteria are met, removes 97537, narrows the range
S00.00X+ - T88.9XX+ to S00.00X+ - S49.9XX+ (S52.501A, on the site, leaves it) and
rewords the first paragraph of the background.
"""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from lxml import etree, html

from policies.importing import import_policy
from policies.models import Policy, PolicyCodeChange, PolicyStatus, PolicyVersion
from policies.parsing import parse_policy
from policies.versions import compare

from .admin_forms import form_data, messages
from .content_dump import natural_dump

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEED = ROOT / "sample_data" / "policy-aetna-0198-work-hardening-programs.txt"
REVISED = DATA / "revised-policy-aetna-0198-work-hardening.txt"
ATOM = etree.RelaxNG(etree.parse(str(DATA / "acceptance" / "atom.rng")))
A = {"atom": "http://www.w3.org/2005/Atom"}
POLICY = "/policies/aetna/0198/"

MOVED = "97546 moved from Not covered to Covered when criteria are met"
REMOVED = "97537 removed from Not covered"
NARROWED = "S00.00X+ - T88.9XX+ became S00.00X+ - S49.9XX+"
REWORDED = "Background: 1 paragraph changed"
OLD_WORDS = "A wide range of programs conducted by a number of different health"
NEW_WORDS = "Programs run by several health disciplines are described"


def import_files(*files, **options):
    out = StringIO()
    call_command("import_policy", *map(str, files), stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def revised(sample_data):
    """The sample data (the seed bulletin as version 1), then the revised copy."""
    import_files(REVISED)
    return Policy.objects.get(payer__slug="aetna", number="0198")


def page(response):
    assert response.status_code == 200, response.content[:500]
    return html.fromstring(response.content)


def text_of(tree, xpath):
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def feed(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    tree = etree.fromstring(response.content)
    assert ATOM.validate(tree), ATOM.error_log
    return tree


def entry_lines(entry):
    content = entry.findtext("atom:summary", namespaces=A)
    return [" ".join(li.text_content().split()) for li in html.fromstring(content)]


# Recording ---------------------------------------------------------------------------


def test_the_revised_copy_records_a_second_version_with_exactly_four_changes(revised):
    first, second = revised.versions.order_by("number")
    assert (first.number, second.number) == (1, 2)
    lines = compare(first.content, second.content).lines()
    assert len(lines) == 4
    assert lines[0] == f"{MOVED}."
    assert lines[1].startswith(REMOVED)
    assert NARROWED in lines[2]
    assert lines[3] == f"{REWORDED}."
    # The whole code table is in the version: the first still lists 97537.
    listed = [row["start_code"] for g in first.content["groups"] for row in g["rows"]]
    assert "97537" in listed
    assert "97537" not in [
        row["start_code"] for g in second.content["groups"] for row in g["rows"]
    ]


def test_reimporting_either_copy_records_no_new_version(sample_data):
    assert PolicyVersion.objects.count() == 1
    import_files(SEED)
    assert PolicyVersion.objects.count() == 1
    import_files(REVISED)
    summary = import_files(REVISED)
    assert PolicyVersion.objects.count() == 2
    assert "unchanged" in summary
    assert "version" not in summary.lower()
    # Going back to the seed's text is a change like any other.
    import_files(SEED)
    assert list(PolicyVersion.objects.values_list("number", flat=True)) == [1, 2, 3]
    assert import_files(SEED).count("Recorded version") == 0


def test_a_dry_run_names_the_changes_it_would_record_and_writes_none(sample_data):
    out = import_files(REVISED, dry_run=True)
    assert PolicyVersion.objects.count() == 1
    named = [line.strip() for line in out.splitlines() if "Would record" in line]
    assert len(named) == 4
    assert all(
        line.startswith("Would record version 2 of Aetna 0198:") for line in named
    )
    assert f"{MOVED}." in named[0]
    assert REMOVED in named[1]
    # The dry run counts the codes on the site that leave the range: S52.501A.
    assert NARROWED in named[2]
    assert "1 ICD-10-CM codes on this site left, 0 entered" in named[2]
    assert REWORDED in named[3]


def test_a_draft_is_not_versioned_until_it_is_published(sample_data):
    Policy.objects.update(status=PolicyStatus.DRAFT)
    import_files(REVISED)
    assert PolicyVersion.objects.count() == 1
    policy = Policy.objects.get()
    policy.status = PolicyStatus.PUBLISHED
    policy.save()
    from policies.versions import record_version

    assert record_version(policy).number == 2


# Pages -------------------------------------------------------------------------------


def test_the_policy_page_lists_its_versions(client, revised):
    tree = page(client.get(POLICY))
    items = text_of(tree, "//section[@class='versions']//li")
    assert [item.split(",")[0] for item in items] == ["Version 2", "Version 1"]
    links = tree.xpath("//section[@class='versions']//a/@href")
    assert f"{POLICY}versions/2/" in links
    assert f"{POLICY}changes/" in links
    assert f"{POLICY}changes.atom" in links


def test_each_version_is_readable_unindexed_with_the_current_page_as_canonical(
    client, revised
):
    old = page(client.get(f"{POLICY}versions/1/"))
    assert old.xpath("//meta[@name='robots']/@content") == ["noindex"]
    assert old.xpath("//link[@rel='canonical']/@href") == [f"http://testserver{POLICY}"]
    assert len(old.xpath("//h1")) == 1
    cells = text_of(old, "//td[@class='code-cell']")
    assert "97537" in cells
    assert "S00.00X+ – T88.9XX+" in cells
    assert OLD_WORDS in old.text_content()

    new = page(client.get(f"{POLICY}versions/2/"))
    headings = text_of(new, "//section[@class='code-group']/h3")
    assert "CPT codes covered if selection criteria are met" in headings
    assert "97537" not in text_of(new, "//td[@class='code-cell']")
    assert NEW_WORDS in new.text_content()


def test_the_changes_page_shows_exactly_the_four_changes(client, revised):
    tree = page(client.get(f"{POLICY}changes/"))
    assert "From version 1" in text_of(tree, "//p[@class='lead']")[0]
    assert text_of(tree, "//li[@class='change-moved']") == [MOVED]
    removed = text_of(tree, "//li[@class='change-removed']")
    assert len(removed) == 1
    assert removed[0].startswith("Removed 97537")
    ranges = text_of(tree, "//li[@class='change-range']")
    assert ranges == [
        f"Range changed {NARROWED}. On this site, 1 ICD-10-CM code left the range "
        "and 0 entered it."
    ]
    assert tree.xpath("//li[@class='change-added']") == []
    assert tree.xpath("//li[@class='change-reworded']") == []
    assert text_of(tree, "//section[@id='text']/h3") == ["Background"]
    paragraphs = tree.xpath("//p[contains(@class, 'text-diff')]")
    assert len(paragraphs) == 1
    assert OLD_WORDS in " ".join(text_of(paragraphs[0], ".//del"))
    assert NEW_WORDS in " ".join(text_of(paragraphs[0], ".//ins"))
    assert tree.xpath("//section[@id='dates']") == []
    assert tree.xpath("//section[@id='references']") == []
    # The same pair, asked for by number.
    same = page(client.get(f"{POLICY}changes/?from=1&to=2"))
    assert text_of(same, "//li[@class='change-moved']") == [MOVED]


def test_the_changes_page_compares_any_pair_either_way(client, revised):
    backwards = page(client.get(f"{POLICY}changes/?from=2&to=1"))
    assert text_of(backwards, "//li[@class='change-moved']") == [
        "97546 moved from Covered when criteria are met to Not covered"
    ]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?from=abc", 400, "“abc” is not a version"),
        ("?to=2026-13-45", 400, "is not a version"),
        ("?from=" + "9" * 40, 400, "is not a version"),
        ("?from=9", 404, "has no version “9”"),
        ("?to=2024-01-01", 404, "has no version “2024-01-01”"),
        ("?from=2&to=2", 400, "the same version"),
    ],
)
def test_bad_versions_get_a_message_not_an_error(
    client, revised, query, status, message
):
    response = client.get(f"{POLICY}changes/{query}")
    assert response.status_code == status
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("address", "status"),
    [
        (f"{POLICY}versions/abc/", 400),
        (f"{POLICY}versions/7/", 404),
        (f"{POLICY}versions/2020-02-30/", 400),
        ("/policies/aetna/9999/versions/1/", 404),
        ("/policies/aetna/9999/changes/", 404),
        ("/policies/aetna/9999/changes.atom", 404),
        ("/payers/nobody/changes.atom", 404),
    ],
)
def test_bad_addresses_get_4xx(client, revised, address, status):
    assert client.get(address).status_code == status


def test_a_version_is_found_by_its_review_date(client, revised):
    PolicyVersion.objects.filter(number=2).update(last_reviewed_on="2026-03-01")
    tree = page(client.get(f"{POLICY}versions/2026-03-01/"))
    assert "version 2" in tree.xpath("string(//p[@class='kicker'])")
    listed = text_of(page(client.get(POLICY)), "//section[@class='versions']//li")
    assert listed[0] == "Version 2, reviewed 2026-03-01"


def test_the_first_version_has_nothing_before_it(client, revised):
    tree = page(client.get(f"{POLICY}changes/?to=1"))
    assert "Version 1 is the first version recorded" in tree.text_content()


def test_a_policy_with_one_version_says_there_is_nothing_to_compare(
    client, sample_data
):
    tree = page(client.get(f"{POLICY}changes/"))
    assert "Only one version" in tree.text_content()


# Code pages --------------------------------------------------------------------------


def status_cell(tree):
    # The policy table's last column: when the code's status last changed.
    return text_of(tree, "//table[@class='policy-table']//tbody/tr/td[last()]")


def test_the_moved_code_page_says_when_and_from_what_its_status_changed(
    client, revised
):
    tree = page(client.get("/codes/cpt/97546/"))
    [cell] = status_cell(tree)
    assert "version 2: was Not covered" in cell
    timeline = text_of(tree, "//ol[@class='code-timeline']/li")
    assert (
        "Aetna 0198, version 2: Moved from Not covered to Covered when" in (timeline[0])
    )
    assert "version 1: Listed as Not covered" in timeline[1]


def test_the_removed_code_and_the_code_that_left_the_range_say_so(client, revised):
    for address in ("/codes/cpt/97537/", "/codes/icd-10-cm/S52.501A/"):
        tree = page(client.get(address))
        assert status_cell(tree) == []  # no policy names it any more
        timeline = text_of(tree, "//ol[@class='code-timeline']/li")
        assert "version 2: Removed (was Not covered)" in timeline[0], address
    full = page(client.get("/codes/icd-10-cm/S52.501A/changes/"))
    assert "through S00.00X+ - T88.9XX+" in text_of(full, "//li")[-1] or any(
        "Listed as Not covered through S00.00X+ - T88.9XX+" in line
        for line in text_of(full, "//ol[@class='code-timeline']/li")
    )


def test_an_unchanged_code_keeps_its_first_version(client, revised):
    for address in ("/codes/cpt/97545/", "/codes/icd-10-cm/Z51.89/"):
        tree = page(client.get(address))
        [cell] = status_cell(tree)
        assert "version 1: first listed" in cell
        timeline = text_of(tree, "//ol[@class='code-timeline']/li")
        assert len(timeline) == 1
        assert "version 2" not in timeline[0]


def test_a_code_still_inside_the_narrowed_range_has_no_change(client, revised):
    from procedures.models import Code

    Code.objects.create(system="icd-10-cm", code="S06.0X0A", descriptor="Concussion")
    tree = page(client.get("/codes/icd-10-cm/S06.0X0A/"))
    [cell] = status_cell(tree)
    assert "first listed" in cell
    assert len(text_of(tree, "//ol[@class='code-timeline']/li")) == 1


def test_the_code_timeline_address_redirects_to_the_canonical_code(client, revised):
    response = client.get("/codes/icd-10-cm/s52501a/changes/")
    assert response.status_code == 301
    assert response["Location"] == "/codes/icd-10-cm/S52.501A/changes/"


# Feeds -------------------------------------------------------------------------------


def test_the_policy_feed_is_valid_atom_with_the_four_changes(client, revised):
    tree = feed(client.get(f"{POLICY}changes.atom"))
    entries = tree.findall("atom:entry", namespaces=A)
    assert len(entries) == 2
    newest = entries[0]
    assert newest.findtext("atom:title", namespaces=A).startswith(
        "Aetna 0198, version 2: 97546 moved"
    )
    lines = entry_lines(newest)
    assert len(lines) == 4
    assert lines[0] == f"{MOVED}."
    assert lines[1].startswith(REMOVED)
    assert NARROWED in lines[2]
    assert lines[3] == f"{REWORDED}."
    link = newest.find("atom:link", namespaces=A).get("href")
    assert link == f"http://testserver{POLICY}changes/?to=2"
    assert entry_lines(entries[1]) == ["First version recorded on this site."]
    # Each entry is the version's address; the first links to it, having no change.
    ids = [entry.findtext("atom:id", namespaces=A) for entry in entries]
    assert ids == [f"http://testserver{POLICY}versions/{n}/" for n in (2, 1)]
    first_link = entries[1].find("atom:link", namespaces=A).get("href")
    assert first_link == f"http://testserver{POLICY}versions/1/"


def test_the_payer_feed_is_valid_atom(client, revised):
    import_files(DATA / "policy-aetna-0325-physical-therapy-ultrasound.txt")
    tree = feed(client.get("/payers/aetna/changes.atom"))
    titles = [
        entry.findtext("atom:title", namespaces=A)
        for entry in tree.findall("atom:entry", namespaces=A)
    ]
    assert titles[0].startswith("Aetna 0325, version 1")
    assert titles[1].startswith("Aetna 0198, version 2: 97546 moved")
    assert len(titles) == 3


# Backups -----------------------------------------------------------------------------


def test_a_backup_round_trip_loses_no_version(revised, tmp_path):
    path = tmp_path / "content.json"
    call_command("export_content", str(path), verbosity=0)
    data = json.loads(path.read_text(encoding="utf-8"))
    [policy] = data["policies"]
    assert [v["number"] for v in policy["versions"]] == [1, 2]
    before = natural_dump()
    stamps = list(PolicyVersion.objects.values_list("number", "created_at"))
    spans = PolicyCodeChange.objects.count()

    Policy.objects.all().delete()
    assert not PolicyVersion.objects.exists()
    call_command("import_content", str(path), verbosity=0)
    assert natural_dump() == before
    assert list(PolicyVersion.objects.values_list("number", "created_at")) == stamps
    assert PolicyCodeChange.objects.count() == spans
    # Again: nothing to add.
    call_command("import_content", str(path), verbosity=0)
    assert PolicyVersion.objects.count() == 2


def test_a_backup_without_versions_records_the_content_as_it_comes(revised, tmp_path):
    path = tmp_path / "content.json"
    call_command("export_content", str(path), verbosity=0)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["policies"][0]["versions"]
    path.write_text(json.dumps(data), encoding="utf-8")
    Policy.objects.all().delete()
    call_command("import_content", str(path), verbosity=0)
    [version] = PolicyVersion.objects.all()
    assert version.note == "Restored from a backup"


def test_a_backup_with_broken_versions_is_refused(revised, tmp_path):
    path = tmp_path / "content.json"
    call_command("export_content", str(path), verbosity=0)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["policies"][0]["versions"][1]["number"] = 1
    data["policies"][0]["versions"][0]["content"]["groups"][0]["coverage"] = "maybe"
    path.write_text(json.dumps(data), encoding="utf-8")
    from django.core.management import CommandError

    with pytest.raises(CommandError) as refused:
        call_command("import_content", str(path), verbosity=0)
    assert "policies[0].versions[1].number: repeats version 1." in str(refused.value)
    assert "versions[0].content.groups[0].coverage" in str(refused.value)
    assert PolicyVersion.objects.count() == 2


# The admin ---------------------------------------------------------------------------


def staff(django_user_model, name, role):
    from django.contrib.auth.models import Group

    person = django_user_model.objects.create_user(name, is_staff=True)
    person.groups.add(Group.objects.get(name=role))
    return person


def save_background(client, policy, text):
    address = f"/admin/policies/policy/{policy.pk}/change/"
    values = form_data(client.get(address))
    values["background"] = text
    response = client.post(address, values)
    assert response.status_code == 302, messages(response)


def test_a_publishers_save_in_the_admin_records_a_version(
    client, revised, django_user_model
):
    client.force_login(staff(django_user_model, "pia", "Publisher"))
    policy = Policy.objects.get()
    save_background(client, policy, "A new background.")
    latest = policy.versions.order_by("-number").first()
    assert latest.number == 3
    assert latest.note == "Edited on this site"
    assert latest.content["sections"]["background"] == "A new background."
    # Saving the same text again records nothing.
    save_background(client, policy, "A new background.")
    assert policy.versions.count() == 3


def test_changing_a_code_groups_coverage_in_the_admin_records_a_version(
    client, revised, django_user_model
):
    client.force_login(staff(django_user_model, "pia", "Publisher"))
    policy = Policy.objects.get()
    group = policy.code_groups.get(system="hcpcs")
    address = f"/admin/policies/policycodegroup/{group.pk}/change/"
    values = form_data(client.get(address))
    values["coverage"] = "covered"
    response = client.post(address, values)
    assert response.status_code == 302, messages(response)
    latest = policy.versions.order_by("-number").first()
    assert latest.number == 3
    lines = compare(policy.versions.get(number=2).content, latest.content).lines()
    assert lines == ["S9117 moved from Not covered to Covered."]
    tree = page(client.get("/codes/hcpcs/S9117/"))
    assert "version 3: was Not covered" in status_cell(tree)[0]


def test_an_authors_edit_waiting_in_the_revision_records_no_version(
    client, revised, django_user_model
):
    client.force_login(staff(django_user_model, "ava", "Author"))
    policy = Policy.objects.get()
    save_background(client, policy, "An edit that waits for a publisher.")
    policy.refresh_from_db()
    assert policy.revision
    assert policy.versions.count() == 2


# Query counts ------------------------------------------------------------------------


def fifty_versions():
    """48 more versions of 0198, each rewording the background once more."""
    text = REVISED.read_text(encoding="utf-8")
    with transaction.atomic():
        for number in range(48):
            parsed = parse_policy(
                text.replace("Programs run by", f"Programs ({number}) run by")
            )
            import_policy(parsed)
    assert PolicyVersion.objects.count() == 50


PINNED = [
    # The policy, related policies, groups, rows, references, code pages, versions.
    (POLICY, 7),
    # The policy, its versions without content, the two contents, the range effects.
    (f"{POLICY}changes/?from=1&to=2", 4),
    # The policy, its versions without content, the version.
    (f"{POLICY}versions/1/", 3),
    # The policy, its latest versions, the versions before them.
    (f"{POLICY}changes.atom", 3),
    ("/payers/aetna/changes.atom", 3),
    # The code, then the versions that may have changed its status (one query).
    ("/codes/icd-10-cm/S52.501A/changes/", 2),
]


@pytest.mark.parametrize(("address", "queries"), PINNED)
def test_version_pages_cost_the_same_with_two_versions_or_fifty(
    client, revised, django_assert_num_queries, address, queries
):
    with django_assert_num_queries(queries):
        page_or_feed = client.get(address)
    assert page_or_feed.status_code == 200
    fifty_versions()
    with django_assert_num_queries(queries):
        assert client.get(address).status_code == 200


def test_the_code_pages_policy_table_costs_the_same_with_fifty_versions(
    client, revised, django_assert_num_queries
):
    # The code page's fixed count (tests/test_code_page.py) with the change history.
    with django_assert_num_queries(9):
        first = client.get("/codes/cpt/97546/")
    fifty_versions()
    with django_assert_num_queries(9):
        again = client.get("/codes/cpt/97546/")
    assert status_cell(page(first)) == status_cell(page(again))


def test_the_version_pages_are_valid_html(client, revised, tmp_path):
    """The Nu HTML Checker, as tests/test_html_validity.py runs it."""
    import shutil
    import subprocess

    from .test_html_validity import VNU

    java = shutil.which("java")
    assert java and VNU.exists(), "run `make browser-tools`"
    files = []
    for index, address in enumerate(
        [
            f"{POLICY}versions/1/",
            f"{POLICY}changes/",
            "/codes/icd-10-cm/S52.501A/changes/",
            "/codes/cpt/97546/",
        ]
    ):
        path = tmp_path / f"page-{index}.html"
        path.write_bytes(client.get(address).content)
        files.append(str(path))
    checked = subprocess.run(
        [java, "-jar", str(VNU), "--format", "json", "--errors-only", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(checked.stderr)["messages"] == []
