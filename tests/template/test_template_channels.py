"""The producers' channels: an SNS subscription and an EventBridge rule to the payments queue, off by
default, and a queue policy that lets exactly the named topic and the stack's rule send to the queue."""

from __future__ import annotations

import re

import pytest

TOPIC = "arn:aws:sns:us-east-1:123456789012:payments"
CHANNELS = ("ProducerTopicSubscription", "ProducerEventRule", "PaymentsQueuePolicy")


def statements(resources, evaluate, **overrides):
    return evaluate(resources["PaymentsQueuePolicy"]["Properties"]["PolicyDocument"], **overrides)[
        "Statement"
    ]


def test_the_channels_are_off_by_default(resources, evaluator):
    defaults = evaluator()
    for name in CHANNELS:
        assert not defaults.condition(resources[name]["Condition"]), name


def test_a_topic_subscribes_the_queue_without_raw_delivery_and_only_it_may_send(
    resources, evaluator, evaluate
):
    on = evaluator(ProducerTopicArn=TOPIC)
    assert on.condition("SubscribeToProducerTopic") and on.condition("AcceptProducerChannels")
    assert not on.condition("RouteProducerEvents")
    subscription = evaluate(resources["ProducerTopicSubscription"]["Properties"], ProducerTopicArn=TOPIC)
    assert subscription == {
        "TopicArn": TOPIC,
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["PaymentsQueue", "Arn"]},
        "RawMessageDelivery": False,
    }
    assert statements(resources, evaluate, ProducerTopicArn=TOPIC) == [
        {
            "Sid": "ProducerTopicOnly",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["PaymentsQueue", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
        }
    ]
    assert evaluate(resources["PaymentsQueuePolicy"]["Properties"]["Queues"]) == [{"Ref": "PaymentsQueue"}]


def test_a_bus_gets_a_rule_sending_whole_events_and_only_that_rule_may_send(resources, evaluator, evaluate):
    on = evaluator(ProducerEventBusName="default")
    assert on.condition("RouteProducerEvents") and not on.condition("SubscribeToProducerTopic")
    rule = evaluate(
        resources["ProducerEventRule"]["Properties"],
        ProducerEventBusName="default",
        ProducerEventSource="com.example.checkout",
    )
    assert rule["EventBusName"] == "default" and rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {"source": ["com.example.checkout"], "detail-type": ["Payment"]}
    assert rule["Targets"] == [{"Id": "payments-queue", "Arn": {"Fn::GetAtt": ["PaymentsQueue", "Arn"]}}]
    assert (
        "InputPath" not in rule["Targets"][0] and "InputTransformer" not in rule["Targets"][0]
    )  # the whole event
    [statement] = statements(resources, evaluate, ProducerEventBusName="default")
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ProducerEventRule", "Arn"]}}
    }


def test_both_channels_at_once_each_with_its_own_statement(resources, evaluate):
    sids = [
        s["Sid"]
        for s in statements(resources, evaluate, ProducerTopicArn=TOPIC, ProducerEventBusName="orders")
    ]
    assert sids == ["ProducerTopicOnly", "ProducerEventRuleOnly"]


def test_no_statement_lets_anyone_else_send(resources):
    for statement in resources["PaymentsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]:
        body = statement["Fn::If"][1]
        assert body["Action"] == "sqs:SendMessage" and "ArnEquals" in body["Condition"]
        assert set(body["Principal"]) == {"Service"}


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("ProducerTopicArn", TOPIC, True),
        ("ProducerTopicArn", "arn:aws-cn:sns:cn-north-1:123456789012:pay_ments-1", True),
        ("ProducerTopicArn", "payments", False),
        ("ProducerTopicArn", "arn:aws:sqs:us-east-1:123456789012:payments", False),
        ("ProducerEventBusName", "default", True),
        ("ProducerEventBusName", "orders.prod-1", True),
        ("ProducerEventBusName", "arn:aws:events:us-east-1:123456789012:event-bus/x", False),
        ("ProducerEventSource", "com.example.checkout", True),
        ("ProducerEventSource", "has space", False),
    ],
)
def test_channel_parameters_accept_only_what_they_name(parameters, name, value, accepted):
    assert bool(re.fullmatch(parameters[name]["AllowedPattern"], value)) is accepted


def test_the_unique_property_defaults_to_the_setup_commands_name_and_empty_opts_out(
    parameters, function, evaluate, monkeypatch
):
    from payments_drain.tools.setup_hubspot import parser

    monkeypatch.delenv("HUBSPOT_UNIQUE_PROPERTY", raising=False)
    assert (
        parameters["HubSpotUniqueProperty"]["Default"]
        == parser().parse_args([]).property
        == "payments_drain_key"
    )
    assert re.fullmatch(parameters["HubSpotUniqueProperty"]["AllowedPattern"], "")
    assert (
        evaluate(function["Environment"]["Variables"], HubSpotUniqueProperty="")["HUBSPOT_UNIQUE_PROPERTY"]
        == ""
    )
