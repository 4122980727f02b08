"""Specs for ``template.yaml``: lint-clean, least privilege, durable data, and deployable offline.

The template is the source of truth for AWS *and* for the local stack, so these tests also translate it
with aws-sam-translator and deploy it into moto's CloudFormation exactly as the local stack does.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from cfnlint.api import lint_file
from medsum.adapters.clients import BEDROCK_CONNECT_TIMEOUT
from medsum.logic.process import SAFETY_MARGIN_SECONDS
from medsum.modelfamily import PROFILE_PREFIXES, base_model_id
from medsum.settings import (
    AdminSettings,
    ApiSettings,
    FunctionSettings,
    IngestSettings,
    NotifierSettings,
    WorkerSettings,
)
from medsum_local.deploy import DeploymentError, validate_parameters
from medsum_local.stack import LOCAL_PARAMETER_DEFAULTS, with_local_defaults
from medsum_local.template import (
    MOTO_BROKEN_TYPES,
    MOTO_MISSING_TYPES,
    MOTO_UNSUPPORTED_TYPES,
    load_template,
    strip_unsupported,
    translate,
)
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

from tests.support.cfn import PSEUDO_PARAMETERS, Evaluator

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
ARTIFACT_BUCKET = "medsum-artifacts"

#: Every function of the template.
FUNCTIONS = tuple(
    logical_id
    for logical_id, resource in load_template(TEMPLATE_PATH)["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
)
#: The settings model each function's code reads its environment into (``settings_of(...)``).
SETTINGS: dict[str, type[FunctionSettings]] = {
    "ApiFunction": ApiSettings,
    "WorkerFunction": WorkerSettings,
    "IngestFunction": IngestSettings,
    "AdminFunction": AdminSettings,
    "NotifierFunction": NotifierSettings,
}

# Actions AWS only grants on Resource "*" (none is needed today). Anything added here needs a reason.
WILDCARD_RESOURCE_ALLOWED_ACTIONS: frozenset[str] = frozenset()

#: What the project's code does to each kind of template resource, in one place: a role may grant on a
#: resource only actions of its kind. A new action here is a new kind of access and needs its reason.
ADAPTER_ACTIONS: dict[str, frozenset[str]] = {
    # The repositories (reports, batches, webhooks, deliveries, audit) and Powertools' idempotency
    # layer. TransactWriteItems is authorised by the actions of the items it writes.
    "AWS::DynamoDB::Table": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
        }
    ),
    # Work and notifier queues: sending (api, ingest, worker, redrive); Lambda's SQS event source polls
    # with the function's role (Receive/Delete/GetQueueAttributes), the worker's heartbeat and the
    # notifier's backoff change visibility; the dead-letter adapter reads and deletes.
    "AWS::SQS::Queue": frozenset(
        {
            "sqs:SendMessage",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        }
    ),
    "AWS::SNS::Topic": frozenset({"sns:Publish"}),
    # Batch files (presigned PUTs, ingestion reads) and results files (multipart writes, presigned GETs).
    "AWS::S3::Bucket": frozenset({"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}),
    # The data key: storage services encrypt with it for the roles; the api encrypts webhook secrets.
    "AWS::KMS::Key": frozenset({"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"}),
}
#: Actions on resources that are not the template's: the model and guardrail the parameters name
#: (their exact resources are specified by the Bedrock tests below).
EXTERNAL_ACTIONS = frozenset({"bedrock:InvokeModel", "bedrock:ApplyGuardrail"})


# --------------------------------------------------------------------------------------------------------
# Builders and fixtures
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = template["Resources"]
    return result


def _artifact_location(local_path: str) -> tuple[str, str]:
    return ARTIFACT_BUCKET, local_path.strip("/").replace("/", "-") + ".zip"


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template, REGION, _artifact_location)


def _props(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resources[logical_id]["Properties"]
    return props


def _role_statements(
    translated: dict[str, Any], function_id: str, parameters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every inline statement of a function's execution role, after translation. Statements the template
    adds with ``Fn::If`` are chosen for ``parameters`` (default: the template's defaults); what is inside a
    statement is left as written."""
    role = translated["Resources"][f"{function_id}Role"]["Properties"]
    evaluator = Evaluator(translated, parameters)
    statements: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            while isinstance(statement, dict) and set(statement) == {"Fn::If"}:
                condition, when_true, when_false = statement["Fn::If"]
                statement = when_true if evaluator.condition(condition) else when_false
            if statement != {"Ref": "AWS::NoValue"}:
                statements.append(statement)
    return statements


def _resolved_role_statements(
    translated: dict[str, Any], function_id: str, parameters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A function role's statements fully resolved for ``parameters`` (``tests/support/cfn.py``)."""
    role = translated["Resources"][f"{function_id}Role"]["Properties"]
    evaluator = Evaluator(translated, parameters)
    return [
        statement
        for policy in evaluator.resolve(role.get("Policies", []))
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _managed_policy_name(arn: str | dict[str, str]) -> str:
    text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
    prefix, _, name = text.partition(":iam::aws:policy/")
    assert prefix in {"arn:aws", "arn:${AWS::Partition}"}, arn
    return name


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _zip_with_handler() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


@contextlib.contextmanager
def _moto_deployment(
    translated: dict[str, Any], parameters: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Deploy the translated template into moto's CloudFormation; yield the stack description."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            env.setenv(name, value)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        for resource in translated["Resources"].values():
            properties = resource.get("Properties", {})
            code = properties.get("Code") or properties.get("Content")
            if resource["Type"] in {"AWS::Lambda::Function", "AWS::Lambda::LayerVersion"}:
                s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=_zip_with_handler())
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="medsum-test",
            TemplateBody=json.dumps(strip_unsupported(translated)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        yield cloudformation.describe_stacks(StackName="medsum-test")["Stacks"][0]


@pytest.fixture(scope="module")
def moto_stack(translated: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The template deployed into moto's CloudFormation with its defaults."""
    with _moto_deployment(translated) as stack:
        yield stack


# --------------------------------------------------------------------------------------------------------
# Lint
# --------------------------------------------------------------------------------------------------------
def test_cfn_lint_reports_no_errors_and_no_warnings() -> None:
    # When
    matches = lint_file(TEMPLATE_PATH)

    # Then
    assert [str(match) for match in matches] == []


# --------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------
# BedrockModelId: any model id, inference-profile id or model / profile ARN; nothing else.
VALID_MODEL_IDS = [
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.titan-text-express-v1",
    "meta.llama3-1-70b-instruct-v1:0",
    "mistral.mistral-7b-instruct-v0:2",
    "cohere.command-r-plus-v1:0",
    "ai21.jamba-1-5-large-v1:0",
    "deepseek.r1-v1:0",
    "openai.gpt-oss-120b-1:0",
    "qwen.qwen3-32b-v1:0",
    "writer.palmyra-x5-v1:0",
    *(f"{prefix}.anthropic.claude-haiku-4-5-20251001-v1:0" for prefix in PROFILE_PREFIXES),
    "us.meta.llama3-2-11b-instruct-v1:0",
    "apac.amazon.nova-pro-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefgh1234",
    "arn:aws:bedrock:us-west-2:123456789012:imported-model/abcd1234efgh",
    "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-3-haiku-20240307-v1:0",
]
INVALID_MODEL_IDS = [
    "",
    " ",
    "anthropic",  # no provider
    "*",
    "anthropic.*",
    "us.anthropic.claude-*",
    " anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0 ",
    "anthropic.claude haiku",
    "anthropic.claude-haiku-4-5-20251001-v1:0\n",
    "anthropic.claude-haiku-4-5-20251001-v1:0:",
    "Anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-haiku/../x",
    "amazon.nova-lite-v1:0;rm -rf /",
    "amazon.nova-lite-v1:0&&id",
    "amazon.nova-lite-v1:0|id",
    "amazon.$(id)",
    "amazon.`id`",
    "amazon.nova'lite",
    'amazon.nova"lite',
    "amazon.nova-lite-v1:0#",
    "provider." + "x" * 200,
    "arn:aws:bedrock:us-east-1::foundation-model/*",
    "arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:foundation-model/amazon.nova-lite-v1:0",  # a model has no account
    "arn:aws:bedrock:us-east-1::inference-profile/us.amazon.nova-lite-v1:0",  # a profile has one
    "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123",
    "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abc",
    "arn:aws:s3:::medsum-bucket",
    "arn:aws:iam::123456789012:role/admin",
    "arn:aws:lambda:us-east-1:123456789012:function:medsum-worker",
    "arn:aws:sagemaker:us-east-1:123456789012:endpoint/model.v1",
]
VALID_GUARDRAIL_IDS = [
    "",
    "abc123def456",
    "gr7",
    "arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123def456",
]
INVALID_GUARDRAIL_IDS = [
    " ",
    "*",
    "ABC123",
    "abc-123",
    "abc123 ",
    "abc;id",
    "arn:aws:bedrock:us-east-1:123456789012:guardrail/*",
    "arn:aws:bedrock:us-east-1:123456789012:guardrail-profile/us.guardrail.v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
    "arn:aws:s3:::bucket",
]
VALID_GUARDRAIL_VERSIONS = ["DRAFT", "1", "42", "99999999"]
INVALID_GUARDRAIL_VERSIONS = ["", "draft", "0", "01", "1.0", "v1", "DRAFT ", "*", "123456789"]


def _pattern(template: dict[str, Any], name: str) -> str:
    pattern: str = template["Parameters"][name]["AllowedPattern"]
    return pattern


@pytest.mark.parametrize("value", VALID_MODEL_IDS)
def test_the_model_pattern_accepts_model_ids_profiles_and_arns(template: dict[str, Any], value: str) -> None:
    assert re.fullmatch(_pattern(template, "BedrockModelId"), value), value


@pytest.mark.parametrize("value", INVALID_MODEL_IDS)
def test_the_model_pattern_rejects_anything_else(template: dict[str, Any], value: str) -> None:
    assert not re.fullmatch(_pattern(template, "BedrockModelId"), value), value


def test_the_default_model_is_a_current_profile_of_a_tool_and_caching_family(
    template: dict[str, Any],
) -> None:
    from medsum.modelfamily import OutputMode, family_for

    model = template["Parameters"]["BedrockModelId"]
    assert re.fullmatch(model["AllowedPattern"], model["Default"])
    assert model["ConstraintDescription"]
    assert "AllowedValues" not in model
    family = family_for(model["Default"])
    assert family.output is OutputMode.TOOL and family.prompt_caching


@pytest.mark.parametrize(
    ("name", "valid", "invalid"),
    [
        ("BedrockGuardrailId", VALID_GUARDRAIL_IDS, INVALID_GUARDRAIL_IDS),
        ("BedrockGuardrailVersion", VALID_GUARDRAIL_VERSIONS, INVALID_GUARDRAIL_VERSIONS),
    ],
)
def test_guardrail_patterns_accept_ids_arns_and_versions_only(
    template: dict[str, Any], name: str, valid: list[str], invalid: list[str]
) -> None:
    pattern = _pattern(template, name)
    assert [v for v in valid if not re.fullmatch(pattern, v)] == []
    assert [v for v in invalid if re.fullmatch(pattern, v)] == []
    assert re.fullmatch(pattern, str(template["Parameters"][name]["Default"]))


def test_the_guardrail_is_off_and_the_context_budget_is_the_familys_by_default(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["BedrockGuardrailId"]["Default"] == ""
    assert parameters["BedrockGuardrailVersion"]["Default"] == "DRAFT"
    context = parameters["BedrockContextTokens"]
    assert (context["Type"], context["Default"], context["MinValue"]) == ("Number", 0, 0)
    assert Evaluator(template).condition("HasGuardrail") is False


def test_cloudformation_patterns_use_no_python_only_regex_syntax(template: dict[str, Any]) -> None:
    # CloudFormation matches AllowedPattern as a Java regex against the whole value
    for name, spec in template["Parameters"].items():
        pattern = spec.get("AllowedPattern", "")
        for python_only in ("(?P<", "(?P=", "\\Z", "(?#"):
            assert python_only not in pattern, (name, python_only)


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")
def test_java_regex_agrees_with_python_on_every_pattern(template: dict[str, Any], tmp_path: Path) -> None:
    # CloudFormation's regex dialect is Java's: check the tables with java.util.regex itself
    source = tmp_path / "Matches.java"
    source.write_text(
        "import java.util.regex.Pattern;\n"
        "public class Matches { public static void main(String[] args) throws Exception {\n"
        "  java.io.BufferedReader in =\n"
        "    new java.io.BufferedReader(new java.io.InputStreamReader(System.in));\n"
        "  String line;\n"
        "  while ((line = in.readLine()) != null) {\n"
        '    String[] parts = line.split(" ", -1);\n'
        '    String pattern = new String(java.util.HexFormat.of().parseHex(parts[0]), "UTF-8");\n'
        '    String value = new String(java.util.HexFormat.of().parseHex(parts[1]), "UTF-8");\n'
        "    System.out.println(Pattern.compile(pattern).matcher(value).matches());\n"
        "  }\n"
        "}}\n",
        encoding="utf-8",
    )
    cases = [
        (_pattern(template, name), value)
        for name, values in (
            ("BedrockModelId", VALID_MODEL_IDS + INVALID_MODEL_IDS),
            ("BedrockGuardrailId", VALID_GUARDRAIL_IDS + INVALID_GUARDRAIL_IDS),
            ("BedrockGuardrailVersion", VALID_GUARDRAIL_VERSIONS + INVALID_GUARDRAIL_VERSIONS),
        )
        for value in values
    ]
    lines = "".join(f"{p.encode().hex()} {v.encode().hex()}\n" for p, v in cases)

    # When
    result = subprocess.run(
        ["java", str(source)], input=lines, capture_output=True, text=True, check=True, timeout=120
    )

    # Then
    java = [line == "true" for line in result.stdout.split()]
    assert java == [re.fullmatch(p, v) is not None for p, v in cases]


@pytest.mark.parametrize("value", VALID_MODEL_IDS)
def test_the_templates_model_shapes_are_the_model_family_modules(
    template: dict[str, Any], value: str
) -> None:
    # Given the conditions the IAM statements branch on
    evaluator = Evaluator(template, {"BedrockModelId": value})
    is_arn = evaluator.condition("BedrockModelIsArn")
    is_profile_id = evaluator.condition("BedrockModelIsProfileId")

    # Then an id is a profile id exactly when medsum.modelfamily strips a geographic prefix from it, and
    # every ARN the pattern admits is one that medsum.modelfamily reads
    assert is_arn == value.startswith("arn:")
    assert is_profile_id == (not is_arn and base_model_id(value) != value)
    if is_arn:
        assert base_model_id(value) != value
    assert evaluator.condition("BedrockModelViaProfile") == (
        is_profile_id or (is_arn and "inference-profile/" in value)
    )


def test_the_profile_condition_lists_exactly_the_model_family_modules_prefixes(
    template: dict[str, Any],
) -> None:
    equals = template["Conditions"]["BedrockModelIsProfileId"]["Fn::Or"]
    assert [condition["Fn::Equals"][1] for condition in equals] == list(PROFILE_PREFIXES)


@pytest.mark.parametrize("value", VALID_MODEL_IDS)
def test_the_local_deploy_accepts_what_cloudformation_accepts(template: dict[str, Any], value: str) -> None:
    validate_parameters(template["Parameters"], {"BedrockModelId": value})


@pytest.mark.parametrize("value", INVALID_MODEL_IDS)
def test_the_local_deploy_rejects_what_cloudformation_rejects(template: dict[str, Any], value: str) -> None:
    with pytest.raises(DeploymentError, match="BedrockModelId must match pattern"):
        validate_parameters(template["Parameters"], {"BedrockModelId": value})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BedrockGuardrailId": "ABC"}, "BedrockGuardrailId must match pattern"),
        ({"BedrockGuardrailVersion": "draft"}, "BedrockGuardrailVersion must match pattern"),
        ({"BedrockContextTokens": "-1"}, "BedrockContextTokens must be a number not less than 0"),
        ({"BedrockContextTokens": "lots"}, "BedrockContextTokens must be a number"),
    ],
)
def test_the_local_deploy_checks_the_guardrail_and_context_parameters(
    template: dict[str, Any], overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(DeploymentError, match=message):
        validate_parameters(template["Parameters"], overrides)
    validate_parameters(
        template["Parameters"],
        {"BedrockGuardrailId": "abc123", "BedrockGuardrailVersion": "3", "BedrockContextTokens": "8192"},
    )


def test_the_local_stack_gives_the_stand_in_models_context_window_unless_told_otherwise(
    template: dict[str, Any],
) -> None:
    declared = set(template["Parameters"])

    # Then: 8192 by default, the caller's value when given, nothing for a template without the parameter
    assert LOCAL_PARAMETER_DEFAULTS == {"BedrockContextTokens": "8192"}
    assert with_local_defaults({"StageName": "x"}, declared) == {
        "StageName": "x",
        "BedrockContextTokens": "8192",
    }
    assert with_local_defaults({"BedrockContextTokens": "0"}, declared) == {"BedrockContextTokens": "0"}
    assert with_local_defaults({}, {"StageName"}) == {}
    validate_parameters(template["Parameters"], with_local_defaults({}, declared))


def test_a_model_call_fits_in_the_worker_and_a_dead_workers_report_returns_within_the_lease(
    template: dict[str, Any],
) -> None:
    # Given
    parameters = template["Parameters"]
    lease, read_timeout = parameters["LeaseSeconds"], parameters["BedrockReadTimeoutSeconds"]
    budget = parameters["BedrockRetryBudgetSeconds"]
    worker_timeout = _props(template["Resources"], "WorkerFunction")["Timeout"]
    reserve, connect = SAFETY_MARGIN_SECONDS, BEDROCK_CONNECT_TIMEOUT

    # Then: the longest call the template allows, with the time kept for the final write, fits twice in
    # one invocation (a repair or a retry with more room after the first reply)
    assert 2 * (read_timeout["Default"] + connect) + reserve <= worker_timeout
    assert read_timeout["MaxValue"] + connect + reserve <= worker_timeout
    assert read_timeout["MinValue"] <= read_timeout["Default"] <= read_timeout["MaxValue"]
    # And the retry loop's budget is bounded by the invocation too
    assert budget["MaxValue"] < worker_timeout
    # And the lease is renewed every third of it while the worker lives, so it can be far shorter than
    # the worker timeout: a dead worker's report is claimed again within about one lease
    assert lease["MinValue"] <= lease["Default"] <= lease["MaxValue"] <= worker_timeout
    assert lease["Default"] <= 60


# --------------------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_function_runs_with_its_own_role(translated: dict[str, Any], function_id: str) -> None:
    # Given
    function = translated["Resources"][function_id]["Properties"]

    # Then
    assert function["Role"] == {"Fn::GetAtt": [f"{function_id}Role", "Arn"]}
    assert translated["Resources"][f"{function_id}Role"]["Type"] == "AWS::IAM::Role"


def test_api_function_policies_are_inline_statements_not_policy_templates(resources: dict[str, Any]) -> None:
    # SAM policy templates and managed policy names bring wildcards; only plain statements are allowed.
    policies = _props(resources, "ApiFunction")["Policies"]
    assert policies
    assert all(isinstance(policy, dict) and set(policy) == {"Version", "Statement"} for policy in policies)


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_role_statements_name_their_resources(translated: dict[str, Any], function_id: str) -> None:
    # Given
    statements = _role_statements(translated, function_id)

    # Then
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in _as_list(statement["Action"])), statement
        for resource in _as_list(statement["Resource"]):
            if isinstance(resource, str) and "*" in resource:
                assert set(_as_list(statement["Action"])) <= WILDCARD_RESOURCE_ALLOWED_ACTIONS, statement


def _named(node: Any, resources: dict[str, Any]) -> set[str]:
    """The template resources ``node`` refers to (``Ref``, ``Fn::GetAtt``, ``${Name}`` and
    ``${Name.Attribute}`` in ``Fn::Sub``); parameters and pseudo parameters are not resources."""
    if isinstance(node, list):
        return {name for item in node for name in _named(item, resources)}
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key == "Ref" and value in resources:
            found.add(value)
        elif key == "Fn::GetAtt":
            found.add(value[0] if isinstance(value, list) else value.split(".")[0])
        elif key == "Fn::Sub":
            text = value[0] if isinstance(value, list) else value
            found |= {m for m in re.findall(r"\$\{([A-Za-z0-9]+)[.}]", text) if m in resources}
            found |= _named(value[1:] if isinstance(value, list) else [], resources)
        else:
            found |= _named(value, resources)
    return found


def _configured_resources(translated: dict[str, Any], function_id: str) -> set[str]:
    """What a function is configured to use: the resources its environment and event sources name, and
    the keys those resources are encrypted with."""
    resources = translated["Resources"]
    function = resources[function_id]["Properties"]
    used = _named(function["Environment"]["Variables"], resources)
    for resource in resources.values():
        mapping = resource["Properties"] if resource["Type"] == "AWS::Lambda::EventSourceMapping" else {}
        if mapping.get("FunctionName") == {"Ref": function_id}:
            used |= _named(mapping["EventSourceArn"], resources)
    keys = {
        name
        for used_id in used
        for name in _named(resources[used_id].get("Properties", {}), resources)
        if resources[name]["Type"] == "AWS::KMS::Key"
    }
    return used | keys


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_roles_grant_only_their_resource_kinds_actions_on_resources_the_function_uses(
    translated: dict[str, Any], function_id: str
) -> None:
    # Given the resources the function is configured with (its environment and event sources)
    resources = translated["Resources"]
    configured = _configured_resources(translated, function_id)
    for statement in _role_statements(translated, function_id):
        actions = set(_as_list(statement["Action"]))
        named = _named(statement["Resource"], resources)
        # Then every statement names resources of the template the function uses ...
        if not named:
            assert actions <= EXTERNAL_ACTIONS, statement
            continue
        assert named <= configured, (statement.get("Sid"), named - configured)
        # ... and grants only what the project's code does to resources of that kind
        for name in named:
            assert actions <= ADAPTER_ACTIONS[resources[name]["Type"]], (statement.get("Sid"), name)


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_roles_reach_only_indexes_their_tables_have(
    translated: dict[str, Any], function_id: str
) -> None:
    resources = translated["Resources"]
    for statement in _role_statements(translated, function_id):
        for resource in _as_list(statement["Resource"]):
            text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
            match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/(\w+)", text) if isinstance(text, str) else None
            if match:
                table, index = match.groups()
                indexes = resources[table]["Properties"].get("GlobalSecondaryIndexes", [])
                assert index in {i["IndexName"] for i in indexes}, (statement.get("Sid"), table, index)


def test_api_function_reaches_its_tables_and_indexes_and_nothing_else(translated: dict[str, Any]) -> None:
    # Given
    queries = [s for s in _role_statements(translated, "ApiFunction") if "dynamodb:Query" in s["Action"]]

    # Then
    assert [s["Resource"] for s in queries] == [
        [
            {"Fn::GetAtt": ["PatientReports", "Arn"]},
            {"Fn::Sub": "${PatientReports.Arn}/index/ByOwnerPatient"},
            {"Fn::Sub": "${PatientReports.Arn}/index/ByBatch"},
        ],
        [{"Fn::GetAtt": ["Batches", "Arn"]}, {"Fn::Sub": "${Batches.Arn}/index/ByOwner"}],
        {"Fn::GetAtt": ["Webhooks", "Arn"]},
        {"Fn::GetAtt": ["Deliveries", "Arn"]},
    ]


REGION_, ACCOUNT_ = PSEUDO_PARAMETERS["AWS::Region"], PSEUDO_PARAMETERS["AWS::AccountId"]
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
US_PROFILE_ARN = f"arn:aws:bedrock:{REGION_}:{ACCOUNT_}:inference-profile/us.{HAIKU}"
GLOBAL_PROFILE_ARN = f"arn:aws:bedrock:{REGION_}:{ACCOUNT_}:inference-profile/global.{SONNET}"
EU_PROFILE_ARN = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0"
APP_PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
ANY_REGION_MODELS = {"arn:aws:bedrock:*::foundation-model/*", "arn:aws:bedrock:::foundation-model/*"}

# (BedrockModelId, the InvokeModel grants it resolves to: (resources, bedrock:InferenceProfileArn condition))
MODEL_GRANTS: list[tuple[str, list[tuple[set[str], str | None]]]] = [
    (HAIKU, [({f"arn:aws:bedrock:{REGION_}::foundation-model/{HAIKU}"}, None)]),
    (
        "amazon.titan-text-express-v1",
        [({f"arn:aws:bedrock:{REGION_}::foundation-model/amazon.titan-text-express-v1"}, None)],
    ),
    (
        f"us.{HAIKU}",
        [
            ({US_PROFILE_ARN}, None),
            ({f"arn:aws:bedrock:*::foundation-model/{HAIKU}*"}, US_PROFILE_ARN),
        ],
    ),
    (
        f"global.{SONNET}",
        [
            ({GLOBAL_PROFILE_ARN}, None),
            (
                {
                    f"arn:aws:bedrock:*::foundation-model/{SONNET}*",
                    f"arn:aws:bedrock:::foundation-model/{SONNET}*",
                },
                GLOBAL_PROFILE_ARN,
            ),
        ],
    ),
    (EU_PROFILE_ARN, [({EU_PROFILE_ARN}, None), (ANY_REGION_MODELS, EU_PROFILE_ARN)]),
    (APP_PROFILE_ARN, [({APP_PROFILE_ARN}, None), (ANY_REGION_MODELS, APP_PROFILE_ARN)]),
    (
        "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0",
        [({"arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0"}, None)],
    ),
    (
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefgh1234",
        [({"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefgh1234"}, None)],
    ),
]


def _bedrock_grants(statements: list[dict[str, Any]]) -> list[tuple[set[str], str | None]]:
    grants: list[tuple[set[str], str | None]] = []
    for statement in statements:
        if not any(action.startswith("bedrock:InvokeModel") for action in _as_list(statement["Action"])):
            continue
        assert _as_list(statement["Action"]) == ["bedrock:InvokeModel"], statement
        condition = statement.get("Condition")
        if condition is not None:
            assert set(condition) == {"StringEquals"} and set(condition["StringEquals"]) == {
                "bedrock:InferenceProfileArn"
            }, condition
        profile = condition["StringEquals"]["bedrock:InferenceProfileArn"] if condition else None
        grants.append((set(_as_list(statement["Resource"])), profile))
    return grants


def _iam_matches(pattern: str, value: str) -> bool:
    """IAM resource matching: ``*`` and ``?`` wildcards, each of an ARN's six fields on its own."""

    def glob(p: str, v: str) -> bool:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
        return re.fullmatch(regex, v, flags=re.DOTALL) is not None

    pattern_fields, value_fields = pattern.split(":", 5), value.split(":", 5)
    return len(pattern_fields) == len(value_fields) and all(
        glob(p, v) for p, v in zip(pattern_fields, value_fields, strict=True)
    )


def _allows(
    statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` in a request with ``context`` keys."""
    for statement in statements:
        if statement["Effect"] != "Allow" or action not in _as_list(statement["Action"]):
            continue
        if not any(_iam_matches(pattern, resource) for pattern in _as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions
        if all(
            (context or {}).get(key) in _as_list(expected)
            for key, expected in conditions.get("StringEquals", {}).items()
        ):
            return True
    return False


@pytest.mark.parametrize(("model_id", "expected"), MODEL_GRANTS, ids=[m for m, _ in MODEL_GRANTS])
def test_worker_may_invoke_exactly_the_configured_model_or_profile(
    translated: dict[str, Any], model_id: str, expected: list[tuple[set[str], str | None]]
) -> None:
    # When
    statements = _resolved_role_statements(translated, "WorkerFunction", {"BedrockModelId": model_id})

    # Then
    assert _bedrock_grants(statements) == expected


@pytest.mark.parametrize("model_id", [m for m, _ in MODEL_GRANTS] + VALID_MODEL_IDS)
def test_a_wildcard_model_resource_is_only_ever_granted_through_the_profile(
    translated: dict[str, Any], model_id: str
) -> None:
    # When
    statements = _resolved_role_statements(translated, "WorkerFunction", {"BedrockModelId": model_id})

    # Then: every resource with a wildcard is a foundation model reached through one named profile
    for resources, profile in _bedrock_grants(statements):
        if any("*" in resource for resource in resources):
            assert profile is not None and "*" not in profile, (resources, profile)
            assert all(":foundation-model/" in resource for resource in resources), resources
    for statement in statements:
        if not any(action.startswith("bedrock:") for action in _as_list(statement["Action"])):
            assert all("*" not in resource for resource in _as_list(statement["Resource"])), statement


def test_through_a_profile_the_worker_reaches_its_model_in_any_region_and_nothing_else(
    translated: dict[str, Any],
) -> None:
    # Given the default model: a us. profile
    statements = _resolved_role_statements(translated, "WorkerFunction")
    default = translated["Parameters"]["BedrockModelId"]["Default"]
    profile = f"arn:aws:bedrock:{REGION_}:{ACCOUNT_}:inference-profile/{default}"
    through_profile = {"bedrock:InferenceProfileArn": profile}

    def model(region: str, model_id: str = base_model_id(default)) -> str:
        return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"

    # Then: the profile, and its model in every region it may route to, through the profile only
    assert _allows(statements, "bedrock:InvokeModel", profile)
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        assert _allows(statements, "bedrock:InvokeModel", model(region), through_profile)
        assert not _allows(statements, "bedrock:InvokeModel", model(region))
    other_profile = {
        "bedrock:InferenceProfileArn": profile.replace("inference-profile/us.", "inference-profile/eu.")
    }
    assert not _allows(statements, "bedrock:InvokeModel", model("eu-west-1"), other_profile)
    assert not _allows(statements, "bedrock:InvokeModel", model("us-east-1", SONNET), through_profile)
    assert not _allows(statements, "bedrock:InvokeModel", profile.replace(HAIKU, SONNET))
    assert not _allows(statements, "bedrock:ApplyGuardrail", profile)


def test_through_a_global_profile_the_worker_reaches_the_region_less_model_too(
    translated: dict[str, Any],
) -> None:
    statements = _resolved_role_statements(
        translated, "WorkerFunction", {"BedrockModelId": f"global.{SONNET}"}
    )
    through_profile = {"bedrock:InferenceProfileArn": GLOBAL_PROFILE_ARN}
    assert _allows(statements, "bedrock:InvokeModel", GLOBAL_PROFILE_ARN)
    for resource in (
        f"arn:aws:bedrock:::foundation-model/{SONNET}",
        f"arn:aws:bedrock:ap-south-1::foundation-model/{SONNET}",
    ):
        assert _allows(statements, "bedrock:InvokeModel", resource, through_profile)
        assert not _allows(statements, "bedrock:InvokeModel", resource)


@pytest.mark.parametrize(
    ("guardrail", "expected"),
    [
        ("", None),
        ("abc123def456", f"arn:aws:bedrock:{REGION_}:{ACCOUNT_}:guardrail/abc123def456"),
        (
            "arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123def456",
            "arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123def456",
        ),
    ],
)
def test_the_worker_may_apply_the_configured_guardrail_and_only_when_one_is_set(
    translated: dict[str, Any], guardrail: str, expected: str | None
) -> None:
    # When
    parameters = {"BedrockGuardrailId": guardrail, "BedrockGuardrailVersion": "3"}
    statements = _resolved_role_statements(translated, "WorkerFunction", parameters)
    granted = {action for s in statements for action in _as_list(s["Action"])}
    without = {
        a for s in _resolved_role_statements(translated, "WorkerFunction") for a in _as_list(s["Action"])
    }

    # Then the guardrail adds ApplyGuardrail on it, and nothing else
    applying = [s for s in statements if "bedrock:ApplyGuardrail" in _as_list(s["Action"])]
    if expected is None:
        assert applying == [] and granted == without
    else:
        assert [(s["Action"], s["Resource"], s.get("Condition")) for s in applying] == [
            ("bedrock:ApplyGuardrail", expected, None)
        ]
        assert granted == without | {"bedrock:ApplyGuardrail"}


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"BedrockModelId": f"global.{SONNET}", "BedrockGuardrailId": "abc123def456"},
        {
            "BedrockModelId": APP_PROFILE_ARN,
            "BedrockGuardrailId": "arn:aws:bedrock:eu-west-1:123456789012:guardrail/x1",
        },
        {"BedrockModelId": HAIKU},
    ],
    ids=["defaults", "global-profile-guardrail-id", "application-profile-guardrail-arn", "model-id"],
)
def test_moto_resolves_the_worker_role_as_the_test_evaluator_does(
    translated: dict[str, Any], parameters: dict[str, str]
) -> None:
    # Given what tests/support/cfn.py resolves the worker's policy to
    expected = _resolved_role_statements(translated, "WorkerFunction", parameters)

    # When moto's CloudFormation deploys the template with the same parameters
    with _moto_deployment(translated, parameters) as stack:
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        iam = boto3.client("iam", region_name=REGION)
        (role,) = [r for r in iam.list_roles()["Roles"] if "WorkerFunctionRole" in r["RoleName"]]
        # moto's API answers a CloudFormation-made inline policy as a Python repr: read its backend
        (document,) = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].get_role(role["RoleName"]).policies.values()
        statements: list[Any] = cast(dict[str, Any], document)["Statement"]
        deployed = [s for s in statements if s is not None]  # moto keeps AWS::NoValue as null

    # Then the Bedrock statements agree (moto resolves GetAtt to real ARNs, the evaluator to placeholders)
    def bedrock(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in statements if str(s["Action"]).startswith("bedrock:")]

    assert bedrock(deployed) == bedrock(expected)
    assert len(deployed) == len(expected)


def test_the_worker_gets_the_model_guardrail_and_context_parameters(resources: dict[str, Any]) -> None:
    variables = _props(resources, "WorkerFunction")["Environment"]["Variables"]
    assert {
        name: variables[name]
        for name in variables
        if name.startswith("BEDROCK_") and name != "BEDROCK_MAX_TOKENS"
    } == {
        "BEDROCK_MODEL_ID": {"Ref": "BedrockModelId"},
        "BEDROCK_GUARDRAIL_ID": {"Ref": "BedrockGuardrailId"},
        "BEDROCK_GUARDRAIL_VERSION": {"Ref": "BedrockGuardrailVersion"},
        "BEDROCK_CONTEXT_TOKENS": {"Ref": "BedrockContextTokens"},
        "BEDROCK_RETRY_BUDGET_SECONDS": {"Ref": "BedrockRetryBudgetSeconds"},
        "BEDROCK_MAX_ATTEMPTS": {"Ref": "BedrockMaxAttempts"},
        "BEDROCK_READ_TIMEOUT_SECONDS": {"Ref": "BedrockReadTimeoutSeconds"},
    }


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_roles_attach_only_the_logging_and_tracing_managed_policies(
    translated: dict[str, Any], function_id: str
) -> None:
    # Given: e.g. not AWSLambdaSQSQueueExecutionRole, which SAM adds for SQS events (every queue, "*")
    role = translated["Resources"][f"{function_id}Role"]["Properties"]

    # When (the template's defaults: FunctionTracing=Active)
    names = sorted(
        _managed_policy_name(arn) for arn in Evaluator(translated).resolve(role["ManagedPolicyArns"])
    )

    # Then
    assert names == ["AWSXrayWriteOnlyAccess", "service-role/AWSLambdaBasicExecutionRole"]


# --------------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tracing", "xray"), [("Active", True), ("Disabled", False)])
def test_function_tracing_parameter_sets_lambda_tracing_and_powertools_alike(
    template: dict[str, Any], tracing: str, xray: bool
) -> None:
    # Given: FunctionTracing (default Active: every function traced with X-Ray)
    assert template["Parameters"]["FunctionTracing"]["Default"] == "Active"
    parameters = {"FunctionTracing": tracing}

    # When
    translated = translate(template, REGION, _artifact_location, parameter_values=parameters)
    evaluator = Evaluator(translated, parameters)

    # Then: Lambda traces, the role may write traces and Powertools' Tracer is live, or none of them
    for function_id in (*FUNCTIONS, "IngestFunction"):
        function = translated["Resources"][function_id]["Properties"]
        variables = evaluator.resolve(function["Environment"]["Variables"])
        role = translated["Resources"][f"{function_id}Role"]["Properties"]
        policies = {_managed_policy_name(arn) for arn in evaluator.resolve(role["ManagedPolicyArns"])}
        assert (evaluator.resolve(function.get("TracingConfig")) == {"Mode": "Active"}) is xray, function_id
        assert ("AWSXrayWriteOnlyAccess" in policies) is xray, function_id
        assert variables["POWERTOOLS_TRACE_DISABLED"] == ("false" if xray else "true"), function_id


def _environment_names(settings: type[FunctionSettings]) -> tuple[set[str], set[str]]:
    """(every variable, the required variables) a settings model reads from the environment."""
    names: dict[str, bool] = {}
    for name, field in settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        names[alias or name.upper()] = field.is_required()
    return set(names), {name for name, required in names.items() if required}


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_each_functions_environment_is_exactly_what_its_settings_read(
    template: dict[str, Any], resources: dict[str, Any], function_id: str
) -> None:
    # Given the function's own variables, less Powertools' (POWERTOOLS_*, and the Globals for all)
    settings = SETTINGS[function_id]
    shared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    variables = {
        name
        for name in _props(resources, function_id)["Environment"]["Variables"]
        if name not in shared and not name.startswith("POWERTOOLS_")
    }
    every, required = _environment_names(settings)

    # Then the template sets every variable the settings read and nothing they do not
    assert variables == every
    assert required <= variables
    service = _props(resources, function_id)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert service == "medsum-" + function_id.removesuffix("Function").lower()


def test_globals_keep_phi_out_of_logs_and_traces(template: dict[str, Any]) -> None:
    # Given
    function_globals = template["Globals"]["Function"]
    variables = function_globals["Environment"]["Variables"]

    # Then
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Medsum"
    assert variables["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"


# --------------------------------------------------------------------------------------------------------
# Queues
# --------------------------------------------------------------------------------------------------------
def _dead_letter_targets(resources: dict[str, Any]) -> dict[str, str]:
    """Queue -> the queue its redrive policy dead-letters to."""
    return {
        logical_id: _named(resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"], resources).pop()
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]
    }


def test_every_queue_dead_letters_and_every_dead_letter_queue_is_watched(resources: dict[str, Any]) -> None:
    # Given the queues, the dead-letter queues (the targets of redrive policies) and the alarms on queues
    queues = {lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    targets = _dead_letter_targets(resources)
    dead_letter_queues = set(targets.values())
    watched = {
        name
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == "AWS/SQS"
        for dimension in resource["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
        for name in _named(dimension["Value"], resources)
    }

    # Then every queue but a dead-letter queue redrives to a dead-letter queue of its own ...
    assert set(targets) == queues - dead_letter_queues
    assert dead_letter_queues <= queues and len(dead_letter_queues) == len(targets)
    assert all(
        resources[t]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600 for t in dead_letter_queues
    )
    # ... and every dead-letter queue has an alarm
    assert dead_letter_queues <= watched


def test_work_queue_redrives_to_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    # Given
    queue = _props(resources, "WorkQueue")
    dlq = _props(resources, "WorkDeadLetterQueue")
    worker = _props(resources, "WorkerFunction")

    # Then
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    # Lambda requires an SQS event source's visibility timeout to cover the function timeout; the
    # heartbeat shortens each message's visibility to the lease from the first beat on
    assert worker["Timeout"] <= queue["VisibilityTimeout"] <= 2 * worker["Timeout"]
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # a function-level DLQ only applies to asynchronous invokes, never to an SQS event source
    assert "DeadLetterQueue" not in worker


def test_worker_consumes_each_lane_with_its_own_concurrency_and_partial_batch_failures(
    resources: dict[str, Any],
) -> None:
    # Given
    events = _props(resources, "WorkerFunction")["Events"]

    # Then: one SQS event source per lane (interactive: WorkQueue, bulk: BulkQueue)
    assert {event["Type"] for event in events.values()} == {"SQS"}
    by_queue = {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]: event["Properties"] for event in events.values()
    }
    assert set(by_queue) == {"WorkQueue", "BulkQueue"}
    for props in by_queue.values():
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # one record per invocation: its time budget and heartbeat are that report's, no report waits
        # behind another's model calls in the same sandbox, and a batch submitted later does not wait
        # behind rounds of another batch's records
        assert props["BatchSize"] == 1
    # And each lane's concurrency is its own parameter, so a bulk backlog cannot take interactive workers
    limits = {q: p["ScalingConfig"]["MaximumConcurrency"]["Ref"] for q, p in by_queue.items()}
    assert limits == {"WorkQueue": "WorkerMaxConcurrency", "BulkQueue": "BulkMaxConcurrency"}


def test_each_lane_has_its_own_dead_letter_queue_and_an_alarm_on_it(resources: dict[str, Any]) -> None:
    # Given the queues with a redrive policy and the alarms' queue dimensions
    redrive = {
        lid: r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for lid, r in resources.items()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    }
    watched = {
        dim["Value"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for dim in r["Properties"].get("Dimensions", [])
        if dim["Name"] == "QueueName"
    }
    # Then both lanes dead-letter to separate queues, and every queue and dead-letter queue is watched
    assert redrive["WorkQueue"] != redrive["BulkQueue"]
    assert set(redrive.values()) <= watched
    assert {"WorkQueue", "BulkQueue"} <= watched


@pytest.mark.parametrize(
    ("logical_id", "key_property"),
    [
        ("WorkQueue", "KmsMasterKeyId"),
        ("WorkDeadLetterQueue", "KmsMasterKeyId"),
        ("BulkQueue", "KmsMasterKeyId"),
        ("BulkDeadLetterQueue", "KmsMasterKeyId"),
        ("ReportEventsTopic", "KmsMasterKeyId"),
        ("AlarmTopic", "KmsMasterKeyId"),
        ("ApiAccessLogGroup", "KmsKeyId"),
        ("ApiFunctionLogGroup", "KmsKeyId"),
        ("WorkerFunctionLogGroup", "KmsKeyId"),
        ("AdminFunctionLogGroup", "KmsKeyId"),
        ("NotifierQueue", "KmsMasterKeyId"),
        ("NotifierDeadLetterQueue", "KmsMasterKeyId"),
        ("NotifierFunctionLogGroup", "KmsKeyId"),
    ],
)
def test_every_store_is_encrypted_with_the_data_key(
    resources: dict[str, Any], logical_id: str, key_property: str
) -> None:
    assert _props(resources, logical_id)[key_property] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def test_data_key_rotates_and_survives_stack_deletion(resources: dict[str, Any]) -> None:
    assert _props(resources, "DataKey")["EnableKeyRotation"] is True
    assert resources["DataKey"]["DeletionPolicy"] == "Retain"


# --------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("logical_id", "ttl_attribute"),
    [
        ("PatientReports", "expires_at"),
        ("IdempotencyTable", "expiration"),
        ("Deliveries", "expires_at"),
        ("Webhooks", "expires_at"),
    ],
)
def test_tables_are_durable_encrypted_and_expire_items(
    resources: dict[str, Any], logical_id: str, ttl_attribute: str
) -> None:
    # Given
    table = _props(resources, logical_id)

    # Then
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    assert table["TimeToLiveSpecification"] == {"AttributeName": ttl_attribute, "Enabled": True}
    assert table["DeletionProtectionEnabled"] is True
    assert resources[logical_id]["DeletionPolicy"] == "Retain"
    assert resources[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_patient_reports_keys_and_owner_scoped_index(resources: dict[str, Any]) -> None:
    # Given
    table = _props(resources, "PatientReports")

    # Then: GetItem by report id; list by (owner, patient) newest first, with list fields only
    assert table["KeySchema"] == [{"AttributeName": "report_id", "KeyType": "HASH"}]
    index, by_batch = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "ByOwnerPatient"
    assert index["KeySchema"] == [
        {"AttributeName": "owner_patient", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["patient_id", "status", "report_type", "updated_at", "owner"],
    }
    # Batch items by batch, ordered by custom_id, keys and status only (results join on custom_id)
    assert by_batch["IndexName"] == "ByBatch"
    assert by_batch["KeySchema"] == [
        {"AttributeName": "batch_id", "KeyType": "HASH"},
        {"AttributeName": "custom_id", "KeyType": "RANGE"},
    ]
    assert by_batch["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}
    assert {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]} == {
        "report_id": "S",
        "owner_patient": "S",
        "batch_id": "S",
        "custom_id": "S",
        "created_at": "S",
    }


def test_idempotency_table_is_keyed_for_powertools(resources: dict[str, Any]) -> None:
    assert _props(resources, "IdempotencyTable")["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


# --------------------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------------------
def test_api_routes_and_only_health_and_openapi_are_unauthenticated(resources: dict[str, Any]) -> None:
    # Given
    events = _props(resources, "ApiFunction")["Events"].values()

    # When
    routes = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"]): e["Properties"]
        .get("Auth", {})
        .get("Authorizer")
        for e in events
    }

    # Then
    assert routes == {
        ("GET", "/"): "NONE",
        ("GET", "/openapi.json"): "NONE",
        ("POST", "/summarize"): None,
        ("GET", "/reports/{report_id}"): None,
        ("DELETE", "/reports/{report_id}"): None,
        ("GET", "/patients/{patient_id}/reports"): None,
        ("ANY", "/summarize"): None,
        ("ANY", "/reports/{report_id}"): None,
        ("ANY", "/patients/{patient_id}/reports"): None,
        ("ANY", "/{proxy+}"): None,
    }
    assert _props(resources, "MedsumApi")["Auth"]["DefaultAuthorizer"] == "AWS_IAM"


def test_gateway_errors_use_the_application_error_shape(resources: dict[str, Any]) -> None:
    # Given
    responses = _props(resources, "MedsumApi")["GatewayResponses"]

    # Then
    assert set(responses) == {
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "MISSING_AUTHENTICATION_TOKEN",
        "ACCESS_DENIED",
        "INVALID_SIGNATURE",
        "THROTTLED",
    }
    for response in responses.values():
        body = response["ResponseTemplates"]["application/json"]
        # the template is JSON once API Gateway substitutes its (already quoted) message string
        parsed = json.loads(body.replace("$context.error.messageString", '"message"'))
        assert set(parsed) == {"error"}
        assert set(parsed["error"]) == {"code", "message"}


def test_access_logs_never_carry_bodies_or_concrete_paths(resources: dict[str, Any]) -> None:
    # Given
    access_log = _props(resources, "MedsumApi")["AccessLogSetting"]
    fields = json.loads(access_log["Format"])

    # Then
    assert access_log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert {"requestId", "caller", "httpMethod", "resourcePath", "status", "responseLatency"} <= set(fields)
    assert not any(
        token in access_log["Format"]
        for token in ("$input", "$context.path", "requestOverride", "$context.authorizer")
    )


def test_api_throttling_and_tracing_come_from_parameters(resources: dict[str, Any]) -> None:
    # Given
    api = _props(resources, "MedsumApi")
    (settings,) = api["MethodSettings"]

    # Then
    assert api["StageName"] == {"Ref": "StageName"}
    assert api["TracingEnabled"] is True
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["DataTraceEnabled"] is False


# --------------------------------------------------------------------------------------------------------
# Observability
# --------------------------------------------------------------------------------------------------------
def test_every_alarm_notifies_the_alarm_topic(resources: dict[str, Any]) -> None:
    # Given
    alarms = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}

    # Then
    assert alarms
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_bedrock_alarm_watches_the_metric_the_worker_emits(resources: dict[str, Any]) -> None:
    # Given
    alarm = _props(resources, "BedrockThrottlingAlarm")

    # Then: Powertools Metrics publishes to the namespace with the default "service" dimension
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Medsum", "BedrockThrottled")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "medsum-worker"}]


def test_dead_letter_alarm_fires_on_the_first_message(resources: dict[str, Any]) -> None:
    alarm = _props(resources, "DeadLetterQueueNotEmptyAlarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_dashboard_body_is_json_once_substituted(resources: dict[str, Any]) -> None:
    # Given
    body = _props(resources, "Dashboard")["DashboardBody"]["Fn::Sub"]

    # When
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))

    # Then
    assert dashboard["widgets"]
    assert all(widget["properties"]["metrics"] for widget in dashboard["widgets"])


def test_dashboard_shows_latency_percentiles_queues_and_bedrock_usage(resources: dict[str, Any]) -> None:
    # Given
    body = _props(resources, "Dashboard")["DashboardBody"]["Fn::Sub"]

    # Then
    for fragment in (
        '"p50"',
        '"p95"',
        '"p99"',
        '"5XXError"',
        '"4XXError"',
        '"ApproximateNumberOfMessagesVisible"',
        '"BedrockInputTokens"',
        '"BedrockOutputTokens"',
        '"BedrockLatency"',
    ):
        assert fragment in body


# --------------------------------------------------------------------------------------------------------
# Translation and offline deployment (what the local stack does)
# --------------------------------------------------------------------------------------------------------
def test_translation_leaves_no_sam_resources_and_uses_the_uploaded_artifacts(
    translated: dict[str, Any],
) -> None:
    # Given
    resources = translated["Resources"]

    # Then
    assert "Transform" not in translated
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    assert resources["ApiFunction"]["Properties"]["Code"] == {
        "S3Bucket": ARTIFACT_BUCKET,
        "S3Key": "functions-api.zip",
    }
    (layer,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert layer["Properties"]["Content"] == {"S3Bucket": ARTIFACT_BUCKET, "S3Key": "shared.zip"}


def test_moto_unsupported_types_are_exactly_the_ones_moto_cannot_create(translated: dict[str, Any]) -> None:
    # Given
    moto_types = set(get_model_map())
    template_types = {r["Type"] for r in translated["Resources"].values()}

    # Then: the list is honest both ways, so the local stack strips nothing moto could create
    assert not MOTO_MISSING_TYPES & moto_types
    assert moto_types >= MOTO_BROKEN_TYPES
    assert template_types - moto_types <= MOTO_UNSUPPORTED_TYPES


def test_strip_unsupported_refuses_to_leave_dangling_references() -> None:
    # Given: a kept resource that needs a removed one
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "DependsOn": "Policy"},
            "Policy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Queue"}]}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "${Policy}"}}},
        }
    }

    # Then
    with pytest.raises(ValueError, match="Topic -> Policy"):
        strip_unsupported(template)


def test_load_template_expands_short_form_intrinsics(template: dict[str, Any]) -> None:
    worker = _props(template["Resources"], "WorkerFunction")
    assert worker["Events"]["Work"]["Properties"]["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def test_template_deploys_into_moto_cloudformation(moto_stack: dict[str, Any]) -> None:
    # Then
    assert moto_stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"] for o in moto_stack["Outputs"]} == {
        "ApiUrl",
        "PatientReportsTableName",
        "BatchesTableName",
        "WebhooksTableName",
        "DeliveriesTableName",
        "NotifierQueueUrl",
        "NotifierDeadLetterQueueUrl",
        "IdempotencyTableName",
        "WorkQueueUrl",
        "WorkDeadLetterQueueUrl",
        "BulkQueueUrl",
        "BulkDeadLetterQueueUrl",
        "ReportEventsTopicArn",
        "UploadsBucketName",
        "IngestStateMachineArn",
        "AlarmTopicArn",
        "OperatorAuditTableName",
    }


def test_deployed_resources_carry_the_template_settings(moto_stack: dict[str, Any]) -> None:
    # Given
    outputs = {o["OutputKey"]: o["OutputValue"] for o in moto_stack["Outputs"]}
    sqs = boto3.client("sqs", region_name=REGION)
    lambda_ = boto3.client("lambda", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)

    # When
    queue = sqs.get_queue_attributes(QueueUrl=outputs["WorkQueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["WorkDeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    functions = {f["FunctionName"]: f for f in lambda_.list_functions()["Functions"]}
    (worker,) = [f for name, f in functions.items() if "WorkerFunction" in name]
    mappings = lambda_.list_event_source_mappings(FunctionName=worker["FunctionName"])["EventSourceMappings"]
    (mapping,) = [m for m in mappings if m["EventSourceArn"] == queue["QueueArn"]]
    table = dynamodb.describe_table(TableName=outputs["PatientReportsTableName"])["Table"]

    # Then
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert queue["VisibilityTimeout"] == "360"
    assert mapping["EventSourceArn"] == queue["QueueArn"]
    assert mapping["BatchSize"] == 1
    assert worker["Environment"]["Variables"]["TABLE_NAME"] == outputs["PatientReportsTableName"]
    assert worker["Environment"]["Variables"]["WORK_QUEUE_URL"] == outputs["WorkQueueUrl"]
    assert worker["Environment"]["Variables"]["PUBLIC_API_URL"] == outputs["ApiUrl"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["ByOwnerPatient", "ByBatch"]


# --------------------------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------------------------
def test_only_the_admin_function_touches_the_dead_letter_queue(translated: dict[str, Any]) -> None:
    def dlq_actions(function_id: str) -> set[str]:
        return {
            action
            for statement in _role_statements(translated, function_id)
            if {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]} in _as_list(statement["Resource"])
            for action in _as_list(statement["Action"])
        }

    assert dlq_actions("ApiFunction") == dlq_actions("WorkerFunction") == set()
    assert dlq_actions("AdminFunction") == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }


def test_the_audit_trail_is_durable_encrypted_and_never_deletable(
    resources: dict[str, Any], translated: dict[str, Any]
) -> None:
    table = _props(resources, "OperatorAudit")
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert table["DeletionProtectionEnabled"] is True and "TimeToLiveSpecification" not in table
    assert resources["OperatorAudit"]["DeletionPolicy"] == "Retain"
    for function_id in ("ApiFunction", "WorkerFunction", "IngestFunction", "AdminFunction"):
        for statement in _role_statements(translated, function_id):
            resources_named = json.dumps(statement["Resource"])
            if "OperatorAudit" in resources_named:
                assert function_id == "AdminFunction"
                assert "dynamodb:DeleteItem" not in _as_list(statement["Action"])


def test_admin_routes_go_to_the_admin_function_with_iam_auth_and_operator_principals(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    admin = _props(resources, "AdminFunction")
    # /admin itself too: every /admin path is the operators' (403 for everyone else), none the api's
    assert [(e["Properties"]["Method"], e["Properties"]["Path"]) for e in admin["Events"].values()] == [
        ("ANY", "/admin"),
        ("ANY", "/admin/{proxy+}"),
    ]
    assert all("Auth" not in e["Properties"] for e in admin["Events"].values())  # the default: AWS_IAM
    assert admin["Environment"]["Variables"]["OPERATOR_PRINCIPAL_ARNS"] == {
        "Fn::Join": [",", {"Ref": "OperatorPrincipalArns"}]
    }
    assert template["Parameters"]["OperatorPrincipalArns"]["Type"] == "CommaDelimitedList"


def test_both_http_functions_answer_with_the_cors_origin_parameter(resources: dict[str, Any]) -> None:
    for function in ("ApiFunction", "AdminFunction"):
        variables = _props(resources, function)["Environment"]["Variables"]
        assert variables["CORS_ALLOW_ORIGIN"] == {"Ref": "CorsAllowOrigin"}, function


def test_the_api_builds_links_from_configuration_without_naming_its_own_api(
    resources: dict[str, Any],
) -> None:
    # The API's integration names the function, so the function naming the API would be a cycle
    api = _props(resources, "ApiFunction")
    url = api["Environment"]["Variables"]["PUBLIC_API_URL"]["Fn::Sub"]
    assert url.startswith("https://{api_id}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")
    assert "MedsumApi" not in json.dumps(api["Environment"])


# --------------------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------------------
def test_notifier_queue_is_subscribed_to_the_topic_and_redrives_to_its_own_dlq(
    resources: dict[str, Any],
) -> None:
    # Given
    subscription = _props(resources, "NotifierSubscription")
    queue = _props(resources, "NotifierQueue")
    events = _props(resources, "NotifierFunction")["Events"]["Events"]["Properties"]

    # Then: a durable feed of the topic, read with partial batch failures, dead-lettered after the schedule
    assert subscription["TopicArn"] == {"Ref": "ReportEventsTopic"}
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["NotifierQueue", "Arn"]}
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["NotifierDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "NotifierMaxReceiveCount"},
    }
    assert events["Queue"] == {"Fn::GetAtt": ["NotifierQueue", "Arn"]}
    assert events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue["VisibilityTimeout"] >= 6 * _props(resources, "NotifierFunction")["Timeout"]


def test_webhook_retry_schedule_spans_hours_by_default(template: dict[str, Any]) -> None:
    # Given the defaults: base delay doubling per receive, capped, with equal jitter (at least half)
    parameters = template["Parameters"]
    base, cap = (
        parameters["NotifierRetryBaseDelaySeconds"]["Default"],
        parameters["NotifierRetryMaxDelaySeconds"]["Default"],
    )
    receives = parameters["NotifierMaxReceiveCount"]["Default"]

    # When
    shortest = sum(min(cap, base * 2**n) / 2 for n in range(receives - 1))

    # Then
    assert shortest >= 2 * 3600
    assert parameters["NotifierRetryMaxDelaySeconds"]["MaxValue"] <= 43_200


def test_localhost_webhooks_are_off_unless_asked_for(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert template["Parameters"]["AllowLocalhostWebhooks"]["Default"] == "false"
    for function_id in ("ApiFunction", "NotifierFunction"):
        variables = _props(resources, function_id)["Environment"]["Variables"]
        assert variables["ALLOW_LOCAL_HTTP_WEBHOOKS"] == {"Ref": "AllowLocalhostWebhooks"}


def test_the_api_role_cannot_decrypt_webhook_secrets_itself(translated: dict[str, Any]) -> None:
    # kms:Decrypt only through the storage services (DynamoDB, S3, SQS, SNS): a direct Decrypt of a
    # webhook secret's ciphertext is the notifier's alone.
    decrypting = [
        statement
        for statement in _role_statements(translated, "ApiFunction")
        if "kms:Decrypt" in _as_list(statement["Action"])
    ]
    assert decrypting
    for statement in decrypting:
        services = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert [s["Fn::Sub"].split(".")[0] for s in services] == ["dynamodb", "s3", "sqs", "sns"]
    notifier = [
        statement
        for statement in _role_statements(translated, "NotifierFunction")
        if "kms:Decrypt" in _as_list(statement["Action"]) and "Condition" not in statement
    ]
    assert notifier
