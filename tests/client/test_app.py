"""The ClientApp refuses what is not a well-formed train request, before decoding it."""

import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from client.app import app
from client.guard import check_request_content
from client.site import RoundRefused
from common.protocol import ERROR_REASONS, SIMULATION_ENV, SiteError, TrainRequest, encode_request
from tests.helpers.sites import generator_state, request


@pytest.fixture(autouse=True)
def task_identity():
    """What Flower's runtime sets in the ClientApp's process before a message arrives."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    yield
    TaskIdentity.run_id = TaskIdentity.node_id = TaskIdentity.task_id = None


def train_message(content: RecordDict, message_type: str = MessageType.TRAIN) -> Message:
    return Message(content=content, dst_node_id=1, message_type=message_type)


def valid_content() -> RecordDict:
    return encode_request(TrainRequest(request(1), "{}", "run", generator_state(), None))


def context(node_config: dict) -> Context:
    return Context(run_id=1, node_id=1, node_config=node_config, state=RecordDict(), run_config={})


def test_a_well_formed_request_passes():
    check_request_content(valid_content(), "site-x", 1e6)


def test_an_oversized_request_is_refused_unread():
    content = valid_content()

    with pytest.raises(RoundRefused, match="above the site's limit of 0.0 MB"):
        check_request_content(content, "site-x", 1000)


@pytest.mark.parametrize(
    "tamper, fragment",
    [
        (lambda c: c.__setitem__("payload", ConfigRecord({"x": 1})), "unexpected record"),
        (lambda c: c.__delitem__("generator"), "no 'generator' record"),
        (lambda c: c["request"].__setitem__("round", "one"), "'round' missing or not int"),
        (lambda c: c["request"].__setitem__("exec", "rm -rf"), "unknown field 'exec'"),
        (lambda c: c.__setitem__("generator", ConfigRecord({"a": 1})), "unexpected record"),
    ],
)
def test_malformed_requests_are_refused(tamper, fragment):
    content = valid_content()
    tamper(content)

    with pytest.raises(RoundRefused, match=fragment):
        check_request_content(content, "site-x", 1e9)


def test_the_app_replies_to_a_malformed_request_with_its_code_only(tmp_path, monkeypatch):
    monkeypatch.setenv(SIMULATION_ENV, "1")
    content = valid_content()
    content["extra"] = ArrayRecord(generator_state())
    node_config = {"partition-id": 0, "num-partitions": 3}

    reply = app(train_message(content), context(node_config))

    assert reply.has_error()
    assert reply.error.code == SiteError.MALFORMED_REQUEST
    assert reply.error.reason == ERROR_REASONS[SiteError.MALFORMED_REQUEST]


def test_a_supernode_with_only_partition_keys_is_deployed_and_refuses(monkeypatch, caplog):
    # Only the simulation runtime makes simulated sites: partition keys alone are a SuperNode
    # without its own settings, which must not take data or privacy settings from the server.
    monkeypatch.delenv(SIMULATION_ENV, raising=False)
    node_config = {"partition-id": 0, "num-partitions": 3}

    reply = app(train_message(valid_content()), context(node_config))

    assert reply.error.code == SiteError.REFUSED_POLICY
    assert reply.error.reason == ERROR_REASONS[SiteError.REFUSED_POLICY]
    assert "site-config" in caplog.text  # the operator is told what to set


def test_a_site_without_its_own_settings_refuses_and_says_only_that(tmp_path):
    node_config = {"data-path": str(tmp_path / "secret-patient-0042.npz"), "site-name": "site-x"}

    reply = app(train_message(valid_content()), context(node_config))

    assert reply.error.code == SiteError.REFUSED_POLICY
    assert reply.error.reason == ERROR_REASONS[SiteError.REFUSED_POLICY]


@pytest.mark.parametrize("message_type", [MessageType.QUERY, MessageType.EVALUATE])
def test_other_message_types_are_refused(message_type):
    reply = app(train_message(RecordDict(), message_type), context({}))

    assert reply.error.code == SiteError.REFUSED_POLICY
    assert reply.error.reason == ERROR_REASONS[SiteError.REFUSED_POLICY]


def test_an_unknown_train_action_is_an_error_flower_returns():
    with pytest.raises(ValueError, match="No train function registered with name 'dump'"):
        app(train_message(RecordDict(), "train.dump"), context({}))
