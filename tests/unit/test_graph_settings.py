"""[graph] in tenant.toml, and the pure parts of the directory sync."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sigfilter.catalog import CatalogError, load_catalog
from sigfilter.defaults import GRAPH_AUTHORITY, GRAPH_URL
from sigfilter.graph.client import permission_for, token_roles
from sigfilter.graph.sync import apply_changes, directory_users

REPO = Path(__file__).resolve().parents[2]
TID = 'tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"\n'


def catalog_with(tmp_path: Path, toml: str) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "examples" / "catalog", root)
    path = root / "tenants" / "example.com" / "tenant.toml"
    path.write_text(path.read_text() + "\n" + toml)
    return root


def test_graph_settings_with_defaults_and_a_relative_path(tmp_path: Path) -> None:
    root = catalog_with(
        tmp_path, TID + '[graph]\nclient_id = "abc"\ncertificate_file = "app.pem"\n'
    )
    graph = load_catalog(root).tenants["example.com"].graph
    assert graph is not None
    assert graph.certificate_file == str(root / "tenants" / "example.com" / "app.pem")
    assert (graph.authority, graph.graph_url) == (GRAPH_AUTHORITY, GRAPH_URL)
    assert graph.credential_key == "certificate_file" and graph.photos is False


def test_no_graph_table_means_no_sync(tmp_path: Path) -> None:
    assert load_catalog(catalog_with(tmp_path, "")).tenants["example.com"].graph is None


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[graph]\ncertificate_file = "/x.pem"\n', "[graph] client_id is required"),
        ('[graph]\nclient_id = "a"\n', "exactly one of certificate_file"),
        ('[graph]\nclient_id = "a"\ncertificate_file = "/x"\nclient_secret_file = "/y"\n',
         "exactly one of certificate_file"),
        ('[graph]\nclient_id = "a"\ncertificate_file = "/x"\nauthority = "http://login"\n',
         "[graph] authority must be an https URL"),
        ('[graph]\nclient_id = "a"\ncertificate_file = "/x"\ngraph_url = "https://g/v1.0"\n',
         "[graph] graph_url must be an https URL with only a host"),
        ('[graph]\nclient_id = "a"\ncertificate_file = "/x"\nphoto_size = "100x100"\n',
         "[graph] photo_size must be one of"),
        ('[graph]\nclient_id = "a"\ncertificate_file = "/x"\nclientid = "a"\n',
         "unknown [graph] setting 'clientid'"),
    ],
)  # fmt: skip
def test_bad_graph_settings_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_with(tmp_path, TID + toml))
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_graph_needs_the_tenant_id(tmp_path: Path) -> None:
    toml = '[graph]\nclient_id = "a"\ncertificate_file = "/x"\n'
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_with(tmp_path, toml))
    assert any("needs the tenant's tenant_id" in p for p in caught.value.problems)


def test_delta_merge_replays_partial_answers_and_removals() -> None:
    objects = {"1": {"id": "1", "mail": "a@x.com", "jobTitle": "A"}}
    received, removed = apply_changes(
        objects,
        [
            {"id": "1", "jobTitle": "B"},  # only the changed property (return=minimal)
            {"id": "1", "jobTitle": "B"},  # a replay
            {"id": "2", "mail": "b@x.com", "manager@delta": [{"id": "9"}]},
            {"id": "3", "@removed": {"reason": "deleted"}},  # never seen: nothing to drop
        ],
    )
    assert (received, removed) == (4, 0)
    assert objects["1"] == {"id": "1", "mail": "a@x.com", "jobTitle": "B"}
    assert objects["2"] == {"id": "2", "mail": "b@x.com"}
    assert apply_changes(objects, [{"id": "2", "@removed": {"reason": "changed"}}]) == (1, 1)
    assert "2" not in objects


def test_directory_users_leave_out_and_count() -> None:
    objects = {
        "1": {"mail": "A@X.com", "accountEnabled": True, "businessPhones": ["+1 1"]},
        "2": {"mail": "b@x.com", "accountEnabled": False},
        "3": {"mail": None, "proxyAddresses": ["smtp:c@x.com"], "userPrincipalName": "c@x.com"},
        "4": {"mail": "d@other.org"},
        "5": {"mail": "a@x.com"},
    }
    users, excluded, notes = directory_users(objects, ("x.com",), {"1": ["sales"]})
    assert set(users) == {"a@x.com"}
    assert users["a@x.com"]["groups"] == "" and users["a@x.com"]["phone"] == ""  # "5" wins
    assert excluded == {"account disabled": 1, "no mailbox address": 1,
                        "address outside the tenant's domains": 1}  # fmt: skip
    assert notes == ["a@x.com is the address of two directory users; 5 wins"]


def test_permission_and_roles_for_the_error_message() -> None:
    assert permission_for("/groups/1/transitiveMembers") == "GroupMember.Read.All"
    assert permission_for("/users/delta") == "User.Read.All"
    token = "e30." + "eyJyb2xlcyI6IFsiVXNlci5SZWFkLkFsbCJdfQ" + ".sig"  # {"roles": [...]}
    assert token_roles(token) == ["User.Read.All"]
    assert token_roles("not a jwt") == []


def test_fixture_bodies_are_the_documented_examples() -> None:
    """docs-examples.json's bodies taken from the Graph reference match graph-mocks'."""
    data = REPO / "tests" / "data" / "graph"
    ours = json.loads((data / "docs-examples.json").read_text())
    mocks = json.loads((data / "graph-mocks-users-subset.json").read_text())["mocks"]
    by_url = {m["request"]["url"]: m["response"]["body"] for m in mocks}
    assert (
        ours["users_delta_first_page"]["body"]
        == by_url["https://graph.microsoft.com/v1.0/users/delta"]
    )
    member = by_url["https://graph.microsoft.com/v1.0/groups/*/transitiveMembers"]["value"][0]
    ours_member = ours["transitive_members"]["body"]["value"][0]
    assert set(ours_member) <= set(member) and ours_member["@odata.type"] == member["@odata.type"]
    for name in ("sync_state_not_found", "too_many_requests", "forbidden", "unauthorized"):
        error = ours[name]["body"]["error"]
        assert {"code", "message"} <= set(error) and ours[name]["source"]
