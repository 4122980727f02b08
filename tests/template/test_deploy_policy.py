"""Specs for the deploy role's policy (``deploy/deploy-role-policy.json``) and the deploy settings.

The policy must let CloudFormation create, update and read every resource ``template.yaml`` declares
(after the SAM transform), on the ARNs those resources will have, and grant nothing else. What each
resource type needs comes from CloudFormation's own registry schemas (their handler permissions, as
shipped with cfn-lint), not from a list kept here, so a new resource type in the template fails these
tests until the policy covers it.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scripts.deploy_policy import (
    HANDLERS,
    NOT_GRANTED,
    POLICY_PATH,
    Context,
    action_resource_formats,
    allows,
    deployment_arns,
    handler_permissions,
    load_policy,
    missing_permissions,
    needed_actions,
    render,
    sample_arns,
    statements,
    translated_template,
    unneeded_actions,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return load_policy()


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translated_template()


def _roles(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"}


def _trusted_services(role: dict[str, Any]) -> set[str]:
    services: set[str] = set()
    for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        principal = statement["Principal"].get("Service", [])
        services |= set(principal if isinstance(principal, list) else [principal])
    return services


# --------------------------------------------------------------------------------------------------------
# Coverage: everything the stack creates, nothing more
# --------------------------------------------------------------------------------------------------------
def test_every_resource_type_of_the_stack_has_cloudformation_handler_permissions(
    translated: dict[str, Any],
) -> None:
    # Given every resource type the translated template declares
    types = {resource["Type"] for resource in translated["Resources"].values()}

    # Then CloudFormation's registry schema lists what creating it needs (else the coverage below would
    # be vacuous for that type)
    assert types
    for resource_type in types:
        assert handler_permissions(resource_type, "create"), resource_type


def test_the_policy_allows_every_handler_action_on_every_resource_of_the_stack(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert missing_permissions(policy, translated) == []


def test_the_policy_also_covers_other_stage_stacks(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    # The same policy serves medsum-staging and medsum-prod (one role per stage, or one for all).
    for stack in ("medsum-staging", "medsum-prod"):
        assert missing_permissions(policy, translated, Context(stack=stack)) == []


def test_the_policy_grants_no_action_that_neither_the_stack_nor_sam_deploy_needs(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert unneeded_actions(policy, translated) == []


def test_every_resource_pattern_matches_something_the_deployment_touches(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    # Given
    arns = [arn for values in sample_arns(translated).values() for arn in values] + deployment_arns()

    # Then no statement names resources the stack no longer has
    for statement in statements(policy):
        for pattern in statement["Resource"]:
            if pattern == "*":
                continue
            regex = re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern) + "$")
            assert any(regex.match(arn) for arn in arns), (statement["Sid"], pattern)


def test_the_check_notices_a_missing_statement(policy: dict[str, Any], translated: dict[str, Any]) -> None:
    # Given the policy without its Step Functions statement
    trimmed = dict(policy)
    trimmed["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "StepFunctionsStateMachines"]

    # When
    missing = missing_permissions(trimmed, translated)

    # Then
    assert any("states:CreateStateMachine on arn:aws:states:" in line for line in missing)


# --------------------------------------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------------------------------------
def test_actions_are_real_iam_actions_without_wildcards(policy: dict[str, Any]) -> None:
    for statement in statements(policy):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action, (statement["Sid"], action)
            assert action_resource_formats(action) is not None, (statement["Sid"], action)


def test_resource_wildcards_only_where_iam_offers_no_resource_or_a_condition_limits_them(
    policy: dict[str, Any],
) -> None:
    for statement in statements(policy):
        if "*" not in statement["Resource"] or "Condition" in statement:
            continue
        for action in statement["Action"]:
            assert action_resource_formats(action) == [], (statement["Sid"], action)


def test_stack_scoped_statements_name_only_stack_resources(policy: dict[str, Any]) -> None:
    for statement in statements(policy):
        for pattern in statement["Resource"]:
            # Key, REST API and event source mapping ids are random: the key and the API can be tightened
            # with a tag condition (docs/deploy.md); mapping writes are limited by function instead.
            if pattern == "*" or re.search(r":kms:.*:key/|:event-source-mapping:|:apigateway:", pattern):
                continue
            stack_owned = r"[:/]medsum-|aws-sam-cli-managed-default|transform/Serverless"
            assert re.search(stack_owned, pattern), pattern


def test_pass_role_covers_every_stack_role_for_exactly_the_services_that_trust_it(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    # Given
    arns = sample_arns(translated)
    pass_statements = [s for s in statements(policy) if "iam:PassRole" in s["Action"]]
    granted_services: set[str] = set()
    for statement in pass_statements:
        # Then PassRole always names the receiving services
        services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        granted_services |= set(services if isinstance(services, list) else [services])

    # Then every role can be passed to the services that assume it
    trusted: set[str] = set()
    for logical_id, role in _roles(translated).items():
        (role_arn,) = arns[logical_id]
        assert allows({"Statement": pass_statements}, "iam:PassRole", role_arn), logical_id
        trusted |= _trusted_services(role)
    # ... and to no other service
    assert granted_services == trusted


def test_roles_may_attach_exactly_the_managed_policies_the_template_attaches(
    policy: dict[str, Any], translated: dict[str, Any]
) -> None:
    # Given the managed policies the stack's roles attach (for any parameter values: both branches of an
    # Fn::If, e.g. the X-Ray policy only while FunctionTracing is Active)
    def choices(arn: Any) -> list[Any]:
        if isinstance(arn, dict) and "Fn::If" in arn:
            return [choice for branch in arn["Fn::If"][1:] for choice in choices(branch)]
        return [] if arn == {"Ref": "AWS::NoValue"} else [arn]

    attached = set()
    for role in _roles(translated).values():
        for arn in (c for item in role["Properties"].get("ManagedPolicyArns", []) for c in choices(item)):
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            attached.add(text.replace("${AWS::Partition}", "aws"))

    # Then attaching is limited to exactly those
    attach = [s for s in statements(policy) if "iam:AttachRolePolicy" in s["Action"]]
    assert attach
    for statement in attach:
        assert set(statement["Condition"]["ArnEquals"]["iam:PolicyARN"]) == attached


_STORES = ("AWS::DynamoDB::Table", "AWS::S3::Bucket")


def test_the_deployer_can_read_no_phi(policy: dict[str, Any], translated: dict[str, Any]) -> None:
    # Given every table and bucket of the stack (any of them may hold report text or summaries)
    arns = sample_arns(translated)
    stores = {
        kind: [lid for lid, r in translated["Resources"].items() if r["Type"] == kind] for kind in _STORES
    }
    assert all(stores.values())

    # Then the deploy role can neither read nor change their items or objects
    for table in stores["AWS::DynamoDB::Table"]:
        for action in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DeleteItem"):
            assert not allows(policy, action, arns[table][0]), (table, action)
    for bucket in stores["AWS::S3::Bucket"]:
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert not allows(policy, action, f"{arns[bucket][0]}/uploads/owner/batch.jsonl"), (
                bucket,
                action,
            )


# --------------------------------------------------------------------------------------------------------
# What is deliberately not granted
# --------------------------------------------------------------------------------------------------------
def test_not_granted_entries_are_current_handler_writes_never_reads() -> None:
    for rule in NOT_GRANTED:
        every = set().union(*(handler_permissions(rule.resource_type, h) for h in HANDLERS))
        reads = handler_permissions(rule.resource_type, "read")
        assert rule.actions <= every, (rule.resource_type, sorted(rule.actions - every))
        assert not rule.actions & reads, (rule.resource_type, sorted(rule.actions & reads))


def test_an_unused_property_turned_on_makes_its_permissions_needed() -> None:
    # Given a function without and with a VPC
    plain: dict[str, Any] = {"Type": "AWS::Lambda::Function", "Properties": {}}
    in_vpc: dict[str, Any] = {"Type": "AWS::Lambda::Function", "Properties": {"VpcConfig": {}}}

    # Then only the VPC function needs the EC2 reads
    assert "ec2:DescribeSubnets" not in needed_actions(plain)
    assert "ec2:DescribeSubnets" in needed_actions(in_vpc)


def test_retained_resources_need_no_delete_permissions(translated: dict[str, Any]) -> None:
    # The tables and the key are Retain: CloudFormation never deletes them, so neither can the deployer.
    assert "dynamodb:DeleteTable" not in needed_actions(translated["Resources"]["PatientReports"])
    assert "kms:ScheduleKeyDeletion" not in needed_actions(translated["Resources"]["DataKey"])


def test_allows_honours_unconditional_denies() -> None:
    # Given
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:*:*:medsum-*"},
            {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"},
        ]
    }

    # Then
    assert allows(policy, "sqs:CreateQueue", "arn:aws:sqs:us-east-1:1:medsum-dev-q")
    assert not allows(policy, "sqs:DeleteQueue", "arn:aws:sqs:us-east-1:1:medsum-dev-q")
    assert not allows(policy, "sqs:CreateQueue", "arn:aws:sqs:us-east-1:1:other")


def test_render_fills_in_the_account_and_region() -> None:
    # When
    text = render("123456789012", "eu-west-1")

    # Then
    assert "111122223333" not in text
    assert "us-east-1" not in text
    rendered = json.loads(text)
    assert len(rendered["Statement"]) == len(load_policy()["Statement"])
    assert "arn:aws:cloudformation:eu-west-1:aws:transform/Serverless-2016-10-31" in text


# --------------------------------------------------------------------------------------------------------
# Docs and deploy settings name what exists
# --------------------------------------------------------------------------------------------------------
def test_docs_point_to_the_committed_policy() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert str(POLICY_PATH.relative_to(ROOT)) in docs
    assert '"Sid": "StackRoles"' not in docs, "the policy lives in its JSON file, not in a copy in the docs"


def _override_names(text: str) -> set[str]:
    return set(re.findall(r"(?:^|[\s\"'])([A-Z][A-Za-z0-9]+)=", text))


def test_samconfig_and_the_deploy_workflow_override_only_template_parameters(
    template: dict[str, Any],
) -> None:
    # Given
    parameters = set(template["Parameters"])
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    workflow = (ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    (deploy_step,) = re.findall(r"--parameter-overrides(.*?)--tags", workflow, flags=re.DOTALL)

    # Then
    for env, sections in samconfig.items():
        if not isinstance(sections, dict) or "deploy" not in sections:
            continue
        deploy = sections["deploy"]["parameters"]
        names = _override_names(deploy["parameter_overrides"])
        assert names <= parameters, (env, names - parameters)
        assert {"StageName", "OperatorPrincipalArns", "AlarmEmail"} <= names, env
        assert deploy["resolve_s3"] is True
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert {"StageName", "OperatorPrincipalArns", "AlarmEmail"} <= _override_names(deploy_step) <= parameters


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from medsum_local.template import load_template

    return load_template(ROOT / "template.yaml")
