"""The deploy role's permissions policy, checked against what CloudFormation needs for ``template.yaml``.

``deploy/deploy-role-policy.json`` is the policy docs/deploy.md tells you to attach to the deploy role
(placeholders: account ``111122223333``, region ``us-east-1``, stacks named ``medsum-*``). This module:

- translates ``template.yaml`` with aws-sam-translator (as ``sam deploy`` does) and lists, for every
  resource type the stack creates, the permissions CloudFormation's resource handlers call with the
  deployer's credentials (``handlers.{create,read,update,delete}.permissions`` of the CloudFormation
  registry schemas that cfn-lint ships);
- gives each resource of the stack a sample ARN (CloudFormation's naming: ``<stack>-<LogicalId>-<suffix>``
  unless the template names it), and checks that the policy allows every needed action on the ARNs it
  acts on (``*`` for actions IAM cannot scope to a resource, per cfn-lint's IAM action table);
- reports what the policy grants that nothing needs.

Some handler permissions serve properties this template does not use (VPC access, replication, ...) or
are withheld on purpose (reading or deleting PHI): :data:`NOT_GRANTED` lists them with the condition
under which they would be needed, and the check fails as soon as that condition becomes true.

Run: ``.venv/bin/python scripts/deploy_policy.py check`` (exit 1 on a gap) or
``.venv/bin/python scripts/deploy_policy.py render --account-id 123456789012 --region eu-west-1``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint.data.AdditionalSpecs
import cfnlint.data.schemas
from medsum_local.template import load_template, translate

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
POLICY_PATH = ROOT / "deploy" / "deploy-role-policy.json"

#: Placeholders written in the committed policy (docs/deploy.md says to replace them).
PLACEHOLDER_ACCOUNT = "111122223333"
PLACEHOLDER_REGION = "us-east-1"
PARTITION = "aws"
#: Stack names the policy is written for: ``medsum-<stage>``.
SAMPLE_STACK = "medsum-dev"
#: Stands in for the random suffix CloudFormation appends to generated names.
SUFFIX = "AbCdEf012345"
#: Where ``sam deploy --resolve-s3`` uploads the built code, layer, definitions and the template.
ARTIFACT_BUCKET = "aws-sam-cli-managed-default-samclisourcebucket-abcdef012345"

HANDLERS = ("create", "read", "update", "delete")

#: What ``sam deploy`` itself calls, besides the resource handlers: change sets on the stack (and the
#: SAM transform), reading the stack and its events, and the artifact bucket of ``--resolve-s3``.
SAM_DEPLOY_ACTIONS: frozenset[str] = frozenset(
    {
        "cloudformation:CreateChangeSet",
        "cloudformation:DeleteChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:ListChangeSets",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStackResource",
        "cloudformation:DescribeStackResources",
        "cloudformation:ListStackResources",
        "cloudformation:GetTemplate",
        "cloudformation:GetTemplateSummary",
        "cloudformation:ValidateTemplate",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
    }
)

Props = Mapping[str, Any]


@dataclass(frozen=True)
class NotGranted:
    """Handler permissions of one resource type that the policy deliberately does not grant.

    Parameters
    ----------
    resource_type
        CloudFormation type, e.g. ``AWS::Lambda::Function``.
    actions
        The handler permissions left out.
    needed_if
        Returns True for a resource's properties that *would* need them; None when they are withheld
        whatever the template says.
    reason
        Why they are not granted (shown when the check fails).
    """

    resource_type: str
    actions: frozenset[str]
    needed_if: Callable[[Props], bool] | None
    reason: str


def _uses(*names: str) -> Callable[[Props], bool]:
    return lambda props: any(name in props for name in names)


NOT_GRANTED: tuple[NotGranted, ...] = (
    NotGranted(
        "AWS::Lambda::Function",
        frozenset(
            {
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            }
        ),
        _uses("VpcConfig"),
        "functions run outside a VPC",
    ),
    NotGranted(
        "AWS::Lambda::Function",
        frozenset({"elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets"}),
        _uses("FileSystemConfigs"),
        "no file systems are mounted",
    ),
    NotGranted(
        "AWS::Lambda::Function",
        frozenset(
            {
                "lambda:GetCodeSigningConfig",
                "lambda:PutFunctionCodeSigningConfig",
                "lambda:DeleteFunctionCodeSigningConfig",
            }
        ),
        _uses("CodeSigningConfigArn"),
        "no code signing config",
    ),
    NotGranted(
        "AWS::Lambda::Function",
        frozenset({"lambda:PassCapacityProvider"}),
        _uses("CapacityProviderConfig"),
        "no Lambda capacity provider",
    ),
    NotGranted(
        "AWS::DynamoDB::Table",
        frozenset(
            {
                "dynamodb:ImportTable",
                "dynamodb:DescribeImport",
                "s3:GetObject",
                "s3:GetObjectMetadata",
                "s3:ListBucket",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:PutRetentionPolicy",
            }
        ),
        _uses("ImportSourceSpecification"),
        "no table is created from an S3 import",
    ),
    NotGranted(
        "AWS::DynamoDB::Table",
        frozenset({"kinesis:DescribeStream", "kinesis:PutRecords"}),
        _uses("KinesisStreamSpecification"),
        "no Kinesis streaming destination",
    ),
    NotGranted(
        "AWS::DynamoDB::Table",
        frozenset({"dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy"}),
        _uses("ResourcePolicy"),
        "the tables have no resource policy (access is granted by the function roles only)",
    ),
    NotGranted(
        "AWS::DynamoDB::Table",
        frozenset({"iam:CreateServiceLinkedRole"}),
        _uses("ContributorInsightsSpecification", "KinesisStreamSpecification", "ImportSourceSpecification"),
        "no table feature that needs DynamoDB's service-linked role",
    ),
    NotGranted(
        "AWS::DynamoDB::Table",
        frozenset(
            {
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:Query",
                "dynamodb:Scan",
            }
        ),
        None,
        "the deployer never reads or writes items: the tables hold PHI",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset({"s3:DeleteObject"}),
        None,
        "the deployer never deletes objects (PHI); CloudFormation does not empty buckets",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset(
            {
                "iam:PassRole",
                "s3:PutBucketReplication",
                "s3:PutReplicationConfiguration",
                "s3:DeleteBucketReplication",
            }
        ),
        _uses("ReplicationConfiguration"),
        "no replication (PHI stays in its bucket and region)",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset({"s3:PutBucketAcl", "s3:PutObjectAcl"}),
        _uses("AccessControl"),
        "ACLs are disabled (BucketOwnerEnforced)",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset({"s3:PutBucketWebsite", "s3:DeleteBucketWebsite"}),
        _uses("WebsiteConfiguration"),
        "no website hosting",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset({"s3:PutBucketObjectLockConfiguration", "s3:PutObjectLockConfiguration"}),
        _uses("ObjectLockConfiguration", "ObjectLockEnabled"),
        "no object lock",
    ),
    NotGranted(
        "AWS::S3::Bucket",
        frozenset(
            {
                "s3:CreateBucketMetadataTableConfiguration",
                "s3:DeleteBucketMetadataTableConfiguration",
                "s3:UpdateBucketMetadataAnnotationTableConfiguration",
                "s3:UpdateBucketMetadataInventoryTableConfiguration",
                "s3:UpdateBucketMetadataJournalTableConfiguration",
                "s3tables:CreateNamespace",
                "s3tables:CreateTable",
                "s3tables:CreateTableBucket",
                "s3tables:GetTable",
                "s3tables:GetTableMetadataLocation",
                "s3tables:PutTableBucketPolicy",
                "s3tables:PutTableEncryption",
                "s3tables:PutTablePolicy",
                "s3tables:UpdateTableMetadataLocation",
            }
        ),
        _uses("MetadataConfiguration", "MetadataTableConfiguration"),
        "no S3 metadata tables",
    ),
    NotGranted(
        "AWS::SNS::Topic",
        frozenset({"iam:GetRole", "iam:PassRole"}),
        _uses("DeliveryStatusLogging"),
        "no delivery status logging role",
    ),
    NotGranted(
        "AWS::SNS::Subscription",
        frozenset({"iam:GetRole", "iam:PassRole"}),
        _uses("SubscriptionRoleArn"),
        "no Firehose subscription role",
    ),
    NotGranted(
        "AWS::Logs::LogGroup",
        frozenset({"firehose:TagDeliveryStream", "logs:CreateLogDelivery", "s3:REST.PUT.OBJECT"}),
        _uses("DeliveryDestination", "DeliverySource"),
        "no log deliveries to Firehose or S3",
    ),
    NotGranted(
        "AWS::Logs::LogGroup",
        frozenset({"logs:PutIndexPolicy", "logs:DeleteIndexPolicy"}),
        _uses("FieldIndexPolicies"),
        "no field index policies (IAM cannot scope these to a log group)",
    ),
    NotGranted(
        "AWS::Logs::LogGroup",
        frozenset({"logs:PutResourcePolicy", "logs:DeleteResourcePolicy"}),
        _uses("ResourcePolicyDocument"),
        "no log group resource policy",
    ),
    NotGranted(
        "AWS::IAM::Role",
        frozenset({"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"}),
        _uses("PermissionsBoundary"),
        "no permissions boundary yet (docs/deploy.md, step 6, adds one and denies removing it)",
    ),
    NotGranted(
        "AWS::KMS::Key",
        frozenset({"kms:DisableKey", "kms:EnableKey"}),
        _uses("Enabled"),
        "the key is never disabled by a deployment",
    ),
    NotGranted(
        "AWS::KMS::Key",
        frozenset({"kms:DisableKeyRotation"}),
        lambda props: props.get("EnableKeyRotation") is not True,
        "key rotation stays on",
    ),
)


# --------------------------------------------------------------------------------------------------------
# What CloudFormation needs
# --------------------------------------------------------------------------------------------------------
@cache
def _handler_schema(resource_type: str) -> Mapping[str, Any]:
    schemas = Path(cfnlint.data.schemas.__file__).parent
    providers: dict[str, str] = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    if resource_type not in providers:
        raise KeyError(f"{resource_type}: not in the CloudFormation registry schemas of cfn-lint")
    schema_path = schemas / "resources" / f"{providers[resource_type]}.json"
    schema: dict[str, Any] = json.loads(schema_path.read_text())
    handlers: dict[str, Any] = schema.get("handlers", {})
    return handlers


def handler_permissions(resource_type: str, handler: str) -> frozenset[str]:
    """The permissions CloudFormation's ``handler`` of ``resource_type`` may call.

    Parameters
    ----------
    resource_type
        CloudFormation type, e.g. ``AWS::SQS::Queue``.
    handler
        ``create``, ``read``, ``update`` or ``delete``.

    Returns
    -------
    frozenset of str
        IAM actions, as the registry schema spells them.

    Raises
    ------
    KeyError
        If the type is not in the registry schemas (not a type CloudFormation can create).
    """
    return frozenset(_handler_schema(resource_type).get(handler, {}).get("permissions", []))


def _retained(resource: Mapping[str, Any]) -> bool:
    return resource.get("DeletionPolicy") == "Retain" and resource.get("UpdateReplacePolicy") == "Retain"


def needed_actions(resource: Mapping[str, Any]) -> dict[str, str]:
    """The handler permissions one resource of the translated template needs, each with the handler.

    The delete handler is not needed for a resource CloudFormation never deletes (``DeletionPolicy``
    and ``UpdateReplacePolicy`` both ``Retain``); :data:`NOT_GRANTED` entries are left out unless
    their condition holds for this resource.
    """
    resource_type = str(resource["Type"])
    props: Props = resource.get("Properties", {})
    handlers = [h for h in HANDLERS if not (h == "delete" and _retained(resource))]
    needed: dict[str, str] = {}
    for handler in handlers:
        for action in handler_permissions(resource_type, handler):
            needed.setdefault(action, handler)
    for rule in NOT_GRANTED:
        if rule.resource_type == resource_type and (rule.needed_if is None or not rule.needed_if(props)):
            for action in rule.actions:
                needed.pop(action, None)
    return needed


# --------------------------------------------------------------------------------------------------------
# Sample ARNs of the stack's resources
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """Where the sample ARNs live: account, region and stack name."""

    account: str = PLACEHOLDER_ACCOUNT
    region: str = PLACEHOLDER_REGION
    stack: str = SAMPLE_STACK


def _generated_name(ctx: Context, logical_id: str) -> str:
    return f"{ctx.stack}-{logical_id}-{SUFFIX}"


class _Names:
    """Physical names of the translated template's resources, resolving the few intrinsics they use."""

    _NAME_PROPERTY: Mapping[str, str] = {
        "AWS::IAM::Role": "RoleName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::Events::Rule": "Name",
        "AWS::Lambda::LayerVersion": "LayerName",
        "AWS::KMS::Alias": "AliasName",
    }

    def __init__(self, resources: Mapping[str, Any], ctx: Context) -> None:
        self._resources = resources
        self._ctx = ctx

    def name(self, logical_id: str) -> str:
        resource = self._resources[logical_id]
        prop = self._NAME_PROPERTY.get(resource["Type"])
        explicit = resource.get("Properties", {}).get(prop) if prop else None
        if explicit is not None:
            return self.resolve(explicit)
        name = _generated_name(self._ctx, logical_id)
        return name.lower() if resource["Type"] == "AWS::S3::Bucket" else name

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return self.name(value["Ref"])
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._variable(m.group(1)), value["Fn::Sub"])
        raise ValueError(f"cannot resolve a resource name from {value!r}")

    def _variable(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self._ctx.stack,
            "AWS::Region": self._ctx.region,
            "AWS::AccountId": self._ctx.account,
            "AWS::Partition": PARTITION,
        }
        if name in pseudo:
            return pseudo[name]
        if "." in name:
            raise ValueError(f"cannot resolve ${{{name}}} in a resource name")
        return self.name(name)

    def target(self, value: Any) -> str:
        """The logical id a ``Ref`` / ``Fn::GetAtt`` points at."""
        if isinstance(value, dict) and "Ref" in value:
            return str(value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        raise ValueError(f"not a reference: {value!r}")


def sample_arns(translated: Mapping[str, Any], ctx: Context | None = None) -> dict[str, list[str]]:
    """A sample ARN (or several) for every resource of a translated template.

    Parameters
    ----------
    translated
        The template after the SAM transform.
    ctx
        Account, region and stack name to build the ARNs for (default: the policy's placeholders and
        the stack ``medsum-dev``).

    Returns
    -------
    dict
        Logical id -> the ARNs the resource handlers act on. A policy resource (bucket, queue, topic
        policy), permission or alias maps to the ARNs of what it is attached to.

    Raises
    ------
    ValueError
        For a resource type this function does not know: teach it the type's ARN, then review the
        deploy policy for it.
    """
    ctx = ctx or Context()
    resources: Mapping[str, Any] = translated["Resources"]
    names = _Names(resources, ctx)
    region, account = ctx.region, ctx.account
    api = f"arn:{PARTITION}:apigateway:{region}::"
    rest_api = f"{api}/restapis/a1b2c3d4e5"
    arns: dict[str, list[str]] = {}

    def regional(service: str) -> str:
        return f"arn:{PARTITION}:{service}:{region}:{account}:"

    def own(logical_id: str) -> list[str]:
        if logical_id not in arns:
            arns[logical_id] = build(logical_id)
        return arns[logical_id]

    def build(logical_id: str) -> list[str]:
        resource = resources[logical_id]
        kind = resource["Type"]
        props: Props = resource.get("Properties", {})
        name = names.name(logical_id) if kind in _Names._NAME_PROPERTY else ""
        simple: dict[str, str] = {
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{account}:role{props.get('Path', '/')}{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}",
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{region}:{account}:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{region}:{account}:{name}",
            "AWS::CloudWatch::Alarm": f"arn:{PARTITION}:cloudwatch:{region}:{account}:alarm:{name}",
            "AWS::CloudWatch::Dashboard": f"arn:{PARTITION}:cloudwatch::{account}:dashboard/{name}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::StepFunctions::StateMachine": f"{regional('states')}stateMachine:{name}",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{region}:{account}:rule/{name}",
            "AWS::KMS::Key": f"{regional('kms')}key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "AWS::ApiGateway::Account": f"{api}/account",
        }
        if kind in simple:
            return [simple[kind]]
        if kind == "AWS::Logs::LogGroup":
            group = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}"
            return [group, f"{group}:*"]
        if kind == "AWS::Lambda::LayerVersion":
            layer = f"arn:{PARTITION}:lambda:{region}:{account}:layer:{name}"
            return [layer, f"{layer}:1"]
        if kind == "AWS::Lambda::Permission":
            return own(names.target(props["FunctionName"]))
        if kind == "AWS::Lambda::EventSourceMapping":
            uuid = "0a1b2c3d-0000-4000-8000-000000000000"
            return [f"arn:{PARTITION}:lambda:{region}:{account}:event-source-mapping:{uuid}"]
        if kind == "AWS::SQS::QueuePolicy":
            return [arn for ref in props["Queues"] for arn in own(names.target(ref))]
        if kind == "AWS::SNS::TopicPolicy":
            return [arn for ref in props["Topics"] for arn in own(names.target(ref))]
        if kind == "AWS::SNS::Subscription":
            return own(names.target(props["TopicArn"]))
        if kind == "AWS::S3::BucketPolicy":
            return own(names.target(props["Bucket"]))
        if kind == "AWS::KMS::Alias":
            alias = f"arn:{PARTITION}:kms:{region}:{account}:{name}"
            return [alias, *own(names.target(props["TargetKeyId"]))]
        if kind == "AWS::ApiGateway::RestApi":
            tags = f"{api}/tags/arn%3A{PARTITION}%3Aapigateway%3A{region}%3A%3A%2Frestapis%2Fa1b2c3d4e5"
            return [f"{api}/restapis", rest_api, f"{rest_api}/resources/r1/methods/GET", tags]
        if kind == "AWS::ApiGateway::Deployment":
            return [f"{rest_api}/deployments", f"{rest_api}/deployments/d1"]
        if kind == "AWS::ApiGateway::Stage":
            return [f"{rest_api}/stages", f"{rest_api}/stages/{props.get('StageName', 'v1')}"]
        raise ValueError(f"{logical_id}: no sample ARN for {kind}; add it here and review the deploy policy")

    for logical_id in resources:
        own(logical_id)
    return arns


def deployment_arns(ctx: Context | None = None) -> list[str]:
    """What ``sam deploy`` itself acts on: the stack, the ``--resolve-s3`` stack, the SAM transform, the
    artifact bucket and an uploaded object (code zips, definitions, the template)."""
    ctx = ctx or Context()
    bucket = f"arn:{PARTITION}:s3:::{ARTIFACT_BUCKET}"
    stacks = f"arn:{PARTITION}:cloudformation:{ctx.region}:{ctx.account}:stack"
    return [
        f"{stacks}/{ctx.stack}/0a1b2c3d-0000-4000-8000-000000000000",
        f"{stacks}/aws-sam-cli-managed-default/0a1b2c3d-0000-4000-8000-000000000001",
        f"arn:{PARTITION}:cloudformation:{ctx.region}:aws:transform/Serverless-2016-10-31",
        bucket,
        f"{bucket}/{SAMPLE_STACK}/0123456789abcdef0123456789abcdef",
    ]


# --------------------------------------------------------------------------------------------------------
# IAM: which resources an action applies to, and a small policy evaluator
# --------------------------------------------------------------------------------------------------------
@cache
def _iam_actions() -> Mapping[str, Any]:
    path = Path(cfnlint.data.AdditionalSpecs.__file__).parent / "Policies.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def action_resource_formats(action: str) -> list[re.Pattern[str]] | None:
    """The ARN patterns an IAM action can be scoped to; ``[]`` if only ``"*"``; None if IAM has no such
    action (cfn-lint's table of service actions)."""
    service, _, name = action.partition(":")
    spec = _iam_actions().get(service.lower())
    if spec is None or name.lower() not in spec["Actions"]:
        return None
    resource_types = spec["Actions"][name.lower()].get("Resources", [])
    patterns: list[re.Pattern[str]] = []
    for resource_type in resource_types:
        resource = {k.lower(): v for k, v in spec["Resources"].items()}.get(resource_type.lower())
        for arn_format in (resource or {}).get("ARNFormats", []):
            regex = arn_format.replace("${Partition}", PARTITION).replace("${Region}", "[^:]*")
            regex = re.sub(r"\$\{[^}]+\}", "[^:]*", regex)
            if resource_type.lower() in {"object", "accesspointobject"}:
                regex = regex.replace(":::.*", ":::[^/]+/.*")
            elif resource_type.lower() == "bucket":
                regex = regex.replace(":::.*", ":::[^/]+")
            patterns.append(re.compile(regex + "$"))
    return patterns


def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex + "$", re.IGNORECASE if ignore_case else 0)


def statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements, with ``Action`` and ``Resource`` always lists."""
    result = []
    for statement in policy["Statement"]:
        normalized = dict(statement)
        for key in ("Action", "Resource"):
            value = statement.get(key, [])
            normalized[key] = [value] if isinstance(value, str) else list(value)
        result.append(normalized)
    return result


def _matches(statement: Mapping[str, Any], action: str, arn: str) -> bool:
    return any(_glob(a, ignore_case=True).match(action) for a in statement["Action"]) and any(
        _glob(r).match(arn) for r in statement["Resource"]
    )


def allows(policy: Mapping[str, Any], action: str, arn: str) -> bool:
    """Whether ``policy`` allows ``action`` on ``arn``, conditions aside.

    An unconditional matching ``Deny`` wins; an ``Allow`` counts whatever its ``Condition`` (conditions
    are checked by their own tests, e.g. ``iam:PassedToService``). ``NotAction`` / ``NotResource`` are
    not supported (the policy does not use them).
    """
    found = False
    for statement in statements(policy):
        if "NotAction" in statement or "NotResource" in statement:
            raise ValueError(f"{statement.get('Sid')}: NotAction/NotResource are not supported here")
        if not _matches(statement, action, arn):
            continue
        if statement["Effect"] == "Deny" and "Condition" not in statement:
            return False
        found = found or statement["Effect"] == "Allow"
    return found


# --------------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------------
def load_policy(path: Path = POLICY_PATH) -> dict[str, Any]:
    """The committed deploy-role policy (with its placeholders)."""
    policy: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return policy


def translated_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """``template.yaml`` after the SAM transform, with artifacts in the ``--resolve-s3`` bucket."""

    def artifact(local_path: str) -> tuple[str, str]:
        return ARTIFACT_BUCKET, f"{SAMPLE_STACK}/{local_path.strip('/').replace('/', '-')}"

    return translate(load_template(path), PLACEHOLDER_REGION, artifact)


def _targets(action: str, own: list[str], everything: list[str]) -> list[str] | None:
    """ARNs ``action`` must be allowed on for a resource: its own ARNs if the action applies to them,
    else the stack's (and artifacts') ARNs it applies to; ``["*"]`` if IAM cannot scope it; None if
    nothing in the stack matches; ``[]`` if IAM has no such action (handler schemas name a few API
    operations that are authorized by another action, e.g. ``s3:DeleteBucketCors`` by
    ``s3:PutBucketCORS``)."""
    formats = action_resource_formats(action)
    if formats is None:
        return []
    if not formats:
        return ["*"]
    for pool in (own, everything):
        hits = [arn for arn in pool if any(f.match(arn) for f in formats)]
        if hits:
            return hits
    return None


def missing_permissions(
    policy: Mapping[str, Any], translated: Mapping[str, Any], ctx: Context | None = None
) -> list[str]:
    """Every (resource, handler action, ARN) the policy does not allow, as readable lines.

    Parameters
    ----------
    policy
        The deploy-role policy, written for ``ctx``'s account and region.
    translated
        The template after the SAM transform.
    ctx
        Account, region and stack name (default: the policy's placeholders, stack ``medsum-dev``).

    Returns
    -------
    list of str
        Empty when the policy covers the stack.
    """
    arns = sample_arns(translated, ctx)
    everything = [arn for values in arns.values() for arn in values] + deployment_arns(ctx)
    problems: list[str] = []
    for logical_id, resource in translated["Resources"].items():
        for action, handler in sorted(needed_actions(resource).items()):
            targets = _targets(action, arns[logical_id], everything)
            if targets is None:
                problems.append(
                    f"{logical_id} ({resource['Type']}, {handler}): {action} acts on nothing in the stack; "
                    "grant it on what it needs or add a NOT_GRANTED entry with its reason"
                )
                continue
            for arn in targets:
                if arn != "*" and not allows(policy, action, arn):
                    problems.append(f"{logical_id} ({resource['Type']}, {handler}): {action} on {arn}")
                elif arn == "*" and not allows(policy, action, "*"):
                    problems.append(f"{logical_id} ({resource['Type']}, {handler}): {action} on *")
    return problems


def unneeded_actions(policy: Mapping[str, Any], translated: Mapping[str, Any]) -> list[str]:
    """Actions the policy allows that neither a resource handler of the stack nor ``sam deploy`` needs."""
    needed = {a.lower() for r in translated["Resources"].values() for a in needed_actions(r)}
    needed |= {a.lower() for a in SAM_DEPLOY_ACTIONS}
    granted = {action for s in statements(policy) if s["Effect"] == "Allow" for action in s["Action"]}
    return sorted(action for action in granted if action.lower() not in needed)


def render(account_id: str, region: str, partition: str = PARTITION) -> str:
    """The committed policy for one account and region, ready for ``aws iam create-policy``."""
    if not re.fullmatch(r"\d{12}", account_id):
        raise ValueError("account id must be 12 digits")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        raise ValueError("region must look like us-east-1")
    text = POLICY_PATH.read_text(encoding="utf-8")
    text = text.replace(f":{PLACEHOLDER_REGION}:", f":{region}:").replace(PLACEHOLDER_ACCOUNT, account_id)
    text = text.replace(f":{PLACEHOLDER_REGION}::", f":{region}::").replace('"arn:aws:', f'"arn:{partition}:')
    return text


def _print_lines(lines: Iterable[str]) -> Iterator[str]:
    yield from (f"  {line}" for line in lines)


def main(argv: list[str] | None = None) -> int:
    """``check``: exit 1 if the policy misses or over-grants; ``render``: print it for an account."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="compare deploy/deploy-role-policy.json with template.yaml")
    render_cmd = commands.add_parser("render", help="print the policy for an account and region")
    render_cmd.add_argument("--account-id", required=True)
    render_cmd.add_argument("--region", required=True)
    render_cmd.add_argument("--partition", default=PARTITION)
    args = parser.parse_args(argv)
    if args.command == "render":
        sys.stdout.write(render(args.account_id, args.region, args.partition))
        return 0
    policy, translated = load_policy(), translated_template()
    missing, extra = missing_permissions(policy, translated), unneeded_actions(policy, translated)
    for title, lines in (("missing:", missing), ("granted but not needed:", extra)):
        if lines:
            print(title, *_print_lines(lines), sep="\n")
    if not missing and not extra:
        print(f"{POLICY_PATH.relative_to(ROOT)} covers every resource of template.yaml, and no more")
    return 1 if missing or extra else 0


if __name__ == "__main__":
    raise SystemExit(main())
