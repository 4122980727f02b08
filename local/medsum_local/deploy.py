"""Deploy ``template.yaml`` into the emulator through moto's CloudFormation, and describe the result.

The steps mirror ``sam build && sam deploy``:

1. every local ``CodeUri`` / ``ContentUri`` directory is zipped and uploaded to an artifacts bucket in
   moto, and the SAM template is translated (offline) with those S3 locations;
2. the resource types moto cannot create are stripped (:func:`medsum_local.template.strip_unsupported`)
   and the rest is deployed with ``create_stack`` over the emulator endpoint;
3. the deployed stack is read back (outputs, parameters, physical ids, the functions' resolved
   configuration and the event source mappings), so everything the local stack runs comes from the
   template as deployed, never from a second hand-written list.

The parts of the template moto cannot create but the application depends on are emulated from the
template's own definitions, with their intrinsic functions resolved *by moto* (each is wrapped in a
hidden ``Fn::ToJsonString`` output of the stack, see :data:`EMULATED_OUTPUT_PREFIX`):

* the REST API's OpenAPI body, stage (throttling, stage variables) and gateway responses, which the
  local API gateway serves;
* ``AWS::SNS::Subscription`` resources (``sqs`` protocol), which become real subscriptions in moto's SNS;
* a state machine's ``DefinitionS3Location`` + ``DefinitionSubstitutions`` (inlined as a ``Fn::Sub``
  ``DefinitionString``) and a bucket's EventBridge notifications (enabled through the S3 API).

moto's own event-source-mapping "poller" (it invokes the function through Docker synchronously inside
``SendMessage``) is switched off after the deploy; :mod:`medsum_local.poller` polls instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medsum_local.emulator import Emulator
from medsum_local.template import load_template, strip_unsupported, translate, with_overrides

__all__ = [
    "ARTIFACTS_BUCKET",
    "EMULATED_OUTPUT_PREFIX",
    "DeployedApi",
    "DeployedEventSource",
    "DeployedFunction",
    "DeployedStack",
    "DeploymentError",
    "deploy_template",
    "parse_parameter_overrides",
    "validate_parameters",
]

logger = logging.getLogger(__name__)

#: Bucket in moto that receives the zipped code directories (``sam package``'s S3 bucket).
ARTIFACTS_BUCKET = "medsum-local-artifacts"
#: Prefix of the hidden stack outputs through which moto resolves the emulated resources' properties.
EMULATED_OUTPUT_PREFIX = "MedsumLocalEmulated"

_EMULATED_TYPES = (
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::SNS::Subscription",
)
_ZIP_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class DeploymentError(RuntimeError):
    """The template could not be translated or deployed into the emulator."""


@dataclass(frozen=True)
class DeployedFunction:
    """A deployed ``AWS::Lambda::Function``, as moto reports it, plus where its code lives locally."""

    logical_id: str
    function_name: str
    function_arn: str
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    reserved_concurrency: int | None
    log_group_name: str


@dataclass(frozen=True)
class DeployedEventSource:
    """A deployed ``AWS::Lambda::EventSourceMapping`` (as created in moto, before it is switched off)."""

    logical_id: str
    uuid: str
    function_logical_id: str
    event_source_arn: str
    batch_size: int
    maximum_batching_window_seconds: int
    maximum_concurrency: int | None
    function_response_types: tuple[str, ...]
    enabled: bool

    @property
    def reports_batch_item_failures(self) -> bool:
        """Whether the function returns partial batch responses (``ReportBatchItemFailures``)."""
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True)
class DeployedApi:
    """A REST API of the template: its OpenAPI body, stage and gateway responses, intrinsics resolved."""

    logical_id: str
    api_id: str
    name: str
    body: dict[str, Any]
    stage_name: str
    stage: dict[str, Any]
    gateway_responses: dict[str, dict[str, Any]]


@dataclass
class DeployedStack:
    """What :func:`deploy_template` deployed."""

    stack_name: str
    stack_id: str
    region: str
    account_id: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    resource_types: dict[str, str]
    translated: dict[str, Any]
    functions: dict[str, DeployedFunction] = field(default_factory=dict)
    event_sources: list[DeployedEventSource] = field(default_factory=list)
    apis: list[DeployedApi] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)


def parse_parameter_overrides(*specs: str | None) -> dict[str, str]:
    """Parse ``Key=Value`` overrides (``sam deploy --parameter-overrides`` syntax, whitespace separated).

    Later specs win. ``ParameterKey=K,ParameterValue=V`` pairs are accepted too.

    Raises
    ------
    ValueError
        If an item is not ``Key=Value``.
    """
    result: dict[str, str] = {}
    for spec in specs:
        for item in (spec or "").split():
            if item.startswith("ParameterKey="):
                key_part, _, value_part = item.partition(",ParameterValue=")
                key, value = key_part.removeprefix("ParameterKey="), value_part
            else:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"parameter override {item!r} is not Key=Value")
            if not key:
                raise ValueError(f"parameter override {item!r} has no key")
            result[key] = value
    return result


def validate_parameters(declared: Mapping[str, Any], values: Mapping[str, str]) -> None:
    """Check parameter values against their declared constraints, as CloudFormation does (moto does not).

    Raises
    ------
    DeploymentError
        Naming every parameter that is missing or violates ``AllowedValues``, ``AllowedPattern``,
        ``MinValue`` / ``MaxValue``, ``MinLength`` / ``MaxLength`` or its ``Number`` type.
    """
    problems: list[str] = []
    for name, spec in declared.items():
        value = values.get(name, spec.get("Default"))
        if value is None:
            problems.append(f"{name} must have a value")
            continue
        text = str(value)
        hint = f" ({spec['ConstraintDescription']})" if spec.get("ConstraintDescription") else ""
        if spec.get("Type") == "Number":
            try:
                number = float(text)
            except ValueError:
                problems.append(f"{name} must be a number, not {text!r}")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"{name} must be a number not less than {spec['MinValue']}{hint}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"{name} must be a number not greater than {spec['MaxValue']}{hint}")
            allowed = spec.get("AllowedValues")
            if allowed is not None and number not in {float(v) for v in allowed}:
                problems.append(f"{name} must be one of {allowed}{hint}")
        elif spec.get("Type", "String") == "String":
            allowed = spec.get("AllowedValues")
            if allowed is not None and text not in {str(v) for v in allowed}:
                problems.append(f"{name} must be one of {allowed}{hint}")
            if "AllowedPattern" in spec and re.fullmatch(str(spec["AllowedPattern"]), text) is None:
                problems.append(f"{name} must match pattern {spec['AllowedPattern']}{hint}")
            if "MinLength" in spec and len(text) < int(spec["MinLength"]):
                problems.append(f"{name} must be at least {spec['MinLength']} characters{hint}")
            if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
                problems.append(f"{name} must be at most {spec['MaxLength']} characters{hint}")
    if problems:
        raise DeploymentError("invalid template parameters: " + "; ".join(problems))


def _iter_files(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _ZIP_EXCLUDED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(root) / name


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _iter_files(directory):
            info = zipfile.ZipInfo(str(path.relative_to(directory)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


class _ArtifactUploader:
    """``sam package``: upload a local artifact once (directories zipped), remember key -> local path."""

    def __init__(self, s3: Any, template_dir: Path) -> None:
        self._s3 = s3
        self._template_dir = template_dir
        self.directories: dict[str, Path] = {}
        self._by_uri: dict[str, tuple[str, str]] = {}

    def __call__(self, uri: str) -> tuple[str, str]:
        if uri in self._by_uri:
            return self._by_uri[uri]
        path = (self._template_dir / uri).resolve()
        if path.is_dir():  # CodeUri / ContentUri: a zip of the directory
            data, suffix = _zip_directory(path), ".zip"
        elif path.is_file():  # DefinitionUri: the file itself
            data, suffix = path.read_bytes(), path.suffix
        else:
            raise DeploymentError(f"artifact {uri!r} does not exist under {self._template_dir}")
        slug = str(path.relative_to(self._template_dir)).replace(os.sep, "-").rsplit(".", 1)[0] or "root"
        key = f"{slug}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
        self._s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=data)
        self.directories[key] = path
        self._by_uri[uri] = (ARTIFACTS_BUCKET, key)
        return self._by_uri[uri]


def _add_emulation_outputs(deployable: dict[str, Any], translated: dict[str, Any]) -> None:
    """Add hidden outputs through which moto resolves the intrinsics of the emulated resources."""
    outputs: dict[str, Any] = deployable.setdefault("Outputs", {})
    for logical_id, resource in translated["Resources"].items():
        if resource.get("Type") not in _EMULATED_TYPES:
            continue
        properties = dict(resource.get("Properties") or {})
        # The deployment is not deployed in moto (it cannot be); the stage does not need it.
        properties.pop("DeploymentId", None)
        output: dict[str, Any] = {"Value": {"Fn::ToJsonString": properties or {"_": ""}}}
        if "Condition" in resource:
            output["Condition"] = resource["Condition"]
        outputs[f"{EMULATED_OUTPUT_PREFIX}{logical_id}"] = output


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _logical_ref(value: Any) -> str | None:
    """Return the logical id of ``{"Ref": id}`` / ``{"Fn::GetAtt": [id, attr]}``, else None."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att:
            return str(get_att[0])
    return None


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def deploy_template(
    emulator: Emulator,
    template_path: Path,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    template_overrides: Mapping[str, str] | None = None,
    stack_name: str = "medsum",
) -> DeployedStack:
    """Package, translate and deploy ``template_path`` into ``emulator``; return what was deployed.

    Parameters
    ----------
    emulator
        A started :class:`~medsum_local.emulator.Emulator`.
    template_path
        The SAM template (``template.yaml``); ``CodeUri`` paths are relative to its directory.
    parameter_overrides
        Template parameter values (``{"RequeueBaseDelaySeconds": "1"}``).
    template_overrides
        Literal values of the template replaced before anything else (dotted paths, see
        :func:`medsum_local.template.with_overrides`): for local runs only, e.g. a benchmark's
        shortened ``Resources.WorkerFunction.Properties.Timeout``.
    stack_name
        CloudFormation stack name.

    Returns
    -------
    DeployedStack

    Raises
    ------
    DeploymentError
        If a parameter or an overridden setting does not exist, the translation fails, or the stack
        does not reach ``CREATE_COMPLETE``.
    """
    template_path = template_path.resolve()
    try:
        template = load_template(template_path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DeploymentError(f"cannot load {template_path}: {exc}") from exc
    if template_overrides:
        try:
            template = with_overrides(template, template_overrides)
        except ValueError as exc:
            raise DeploymentError(str(exc)) from exc
    overrides = {key: str(value) for key, value in (parameter_overrides or {}).items()}
    unknown = sorted(set(overrides) - set(template.get("Parameters") or {}))
    if unknown:
        raise DeploymentError(f"parameter overrides not in the template: {', '.join(unknown)}")
    validate_parameters(template.get("Parameters") or {}, overrides)

    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    uploader = _ArtifactUploader(s3, template_path.parent)
    try:
        translated = translate(template, emulator.region, uploader, parameter_values=overrides)
        deployable = strip_unsupported(translated)
    except Exception as exc:  # samtranslator raises several unrelated types
        causes = "; ".join(str(cause) for cause in getattr(exc, "causes", []) or [])
        raise DeploymentError(f"cannot translate {template_path.name}: {exc} {causes}".strip()) from exc
    _inline_state_machine_definitions(deployable, uploader.directories)
    _add_emulation_outputs(deployable, translated)

    cloudformation = emulator.client("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(deployable),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in overrides.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as exc:
        raise DeploymentError(f"create_stack failed in the emulator: {exc}") from exc
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeploymentError(
            f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}"
        )

    summaries = _paginate(
        cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack_name
    )
    all_outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    deployed = DeployedStack(
        stack_name=stack_name,
        stack_id=stack["StackId"],
        region=emulator.region,
        account_id=emulator.account_id,
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        outputs={k: v for k, v in all_outputs.items() if not k.startswith(EMULATED_OUTPUT_PREFIX)},
        physical_ids={s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries},
        resource_types={s["LogicalResourceId"]: s["ResourceType"] for s in summaries},
        translated=translated,
    )
    emulated = {
        key.removeprefix(EMULATED_OUTPUT_PREFIX): json.loads(value)
        for key, value in all_outputs.items()
        if key.startswith(EMULATED_OUTPUT_PREFIX)
    }
    _describe_functions(emulator, deployed, uploader.directories)
    _take_over_event_sources(emulator, deployed)
    _describe_apis(deployed, emulated)
    _create_subscriptions(emulator, deployed, emulated)
    _enable_bucket_event_notifications(emulator, deployed)
    return deployed


def _inline_state_machine_definitions(deployable: dict[str, Any], artifacts: Mapping[str, Path]) -> None:
    """What CloudFormation does with ``DefinitionS3Location`` + ``DefinitionSubstitutions``, for moto.

    moto's ``AWS::StepFunctions::StateMachine`` reads ``DefinitionString`` only and ignores the
    substitutions, so the uploaded definition file becomes ``DefinitionString: {"Fn::Sub": [file,
    substitutions]}`` and moto resolves the substitutions' ``Ref``/``GetAtt`` like CloudFormation would.
    """
    for logical_id, resource in deployable["Resources"].items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource.setdefault("Properties", {})
        location = properties.pop("DefinitionS3Location", None)
        if location is None:
            continue
        key = location.get("Key") if isinstance(location, dict) else None
        if not isinstance(key, str) or key not in artifacts:
            raise DeploymentError(f"{logical_id}: its definition is not a local file of the template")
        text = artifacts[key].read_text(encoding="utf-8")
        substitutions = properties.pop("DefinitionSubstitutions", None) or {}
        properties["DefinitionString"] = {"Fn::Sub": [text, substitutions]} if substitutions else text


def _enable_bucket_event_notifications(emulator: Emulator, stack: DeployedStack) -> None:
    """Apply the buckets' ``NotificationConfiguration.EventBridgeConfiguration`` (moto's CloudFormation
    ignores ``NotificationConfiguration``), so object events reach EventBridge as on AWS."""
    s3 = emulator.client("s3")
    for logical_id, resource in stack.translated["Resources"].items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        notifications = resource.get("Properties", {}).get("NotificationConfiguration") or {}
        eventbridge = notifications.get("EventBridgeConfiguration") or {}
        if str(eventbridge.get("EventBridgeEnabled", "false")).lower() != "true":
            continue
        s3.put_bucket_notification_configuration(
            Bucket=stack.physical_ids[logical_id],
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )


def _describe_functions(emulator: Emulator, stack: DeployedStack, directories: Mapping[str, Path]) -> None:
    lambda_client = emulator.client("lambda")
    resources: dict[str, Any] = stack.translated["Resources"]
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        code = properties.get("Code", {})
        code_key = code.get("S3Key") if isinstance(code, dict) else None
        if not isinstance(code_key, str) or code_key not in directories:
            raise DeploymentError(f"{logical_id}: its code is not a local directory of the template")
        layer_dirs: list[Path] = []
        for layer in properties.get("Layers", []) or []:
            layer_id = _logical_ref(layer)
            layer_resource = resources.get(layer_id or "", {})
            content = layer_resource.get("Properties", {}).get("Content", {})
            key = content.get("S3Key") if isinstance(content, dict) else None
            if isinstance(key, str) and key in directories:
                layer_dirs.append(directories[key])
            # Layers published elsewhere (by ARN) provide libraries the local virtualenv already has.
        config = lambda_client.get_function_configuration(FunctionName=stack.physical_ids[logical_id])
        variables = (config.get("Environment") or {}).get("Variables") or {}
        reserved = properties.get("ReservedConcurrentExecutions")
        stack.functions[logical_id] = DeployedFunction(
            logical_id=logical_id,
            function_name=config["FunctionName"],
            function_arn=config["FunctionArn"],
            handler=config["Handler"],
            runtime=config.get("Runtime", ""),
            timeout_seconds=int(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
            environment={str(k): str(v) for k, v in variables.items()},
            code_dir=directories[code_key],
            layer_dirs=tuple(layer_dirs),
            reserved_concurrency=_int_or_none(stack.parameters.get(reserved["Ref"]))
            if isinstance(reserved, dict) and "Ref" in reserved
            else _int_or_none(reserved),
            log_group_name=f"/aws/lambda/{config['FunctionName']}",
        )


def _take_over_event_sources(emulator: Emulator, stack: DeployedStack) -> None:
    """Read the deployed event source mappings, then switch off moto's built-in synchronous invoker."""
    lambda_client = emulator.client("lambda")
    by_arn = {function.function_arn: function.logical_id for function in stack.functions.values()}
    for logical_id, resource in stack.translated["Resources"].items():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        uuid = stack.physical_ids[logical_id]
        mapping = lambda_client.get_event_source_mapping(UUID=uuid)
        function_logical_id = by_arn.get(mapping["FunctionArn"])
        if function_logical_id is None:
            raise DeploymentError(f"{logical_id}: its function {mapping['FunctionArn']} is not in the stack")
        enabled_property = resource.get("Properties", {}).get("Enabled", True)
        stack.event_sources.append(
            DeployedEventSource(
                logical_id=logical_id,
                uuid=uuid,
                function_logical_id=function_logical_id,
                event_source_arn=mapping["EventSourceArn"],
                batch_size=int(mapping.get("BatchSize") or 10),
                maximum_batching_window_seconds=int(mapping.get("MaximumBatchingWindowInSeconds") or 0),
                maximum_concurrency=_int_or_none(
                    (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
                ),
                function_response_types=tuple(mapping.get("FunctionResponseTypes") or ()),
                enabled=str(enabled_property).lower() != "false",
            )
        )
        # moto would otherwise receive and "invoke" (through Docker) inside every SendMessage call.
        lambda_client.update_event_source_mapping(UUID=uuid, Enabled=False)


def _describe_apis(stack: DeployedStack, emulated: Mapping[str, Any]) -> None:
    resources: dict[str, Any] = stack.translated["Resources"]
    stages = {
        _logical_ref(resource.get("Properties", {}).get("RestApiId")): logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::ApiGateway::Stage"
    }
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ApiGateway::RestApi":
            continue
        properties = emulated.get(logical_id, {})
        body = properties.get("Body")
        if not isinstance(body, dict):
            raise DeploymentError(
                f"{logical_id}: only REST APIs with an inline (SAM-generated) body are served"
            )
        stage_id = stages.get(logical_id)
        stage = dict(emulated.get(stage_id or "", {}))
        responses: dict[str, dict[str, Any]] = {
            str(kind): dict(value)
            for kind, value in (body.get("x-amazon-apigateway-gateway-responses") or {}).items()
        }
        for other_id, other in resources.items():
            if other.get("Type") == "AWS::ApiGateway::GatewayResponse" and other_id in emulated:
                props = emulated[other_id]
                if _logical_ref(other.get("Properties", {}).get("RestApiId")) == logical_id:
                    responses[str(props["ResponseType"])] = {
                        "statusCode": props.get("StatusCode"),
                        "responseParameters": {
                            f"gatewayresponse.{key}" if not key.startswith("gatewayresponse.") else key: value
                            for key, value in (props.get("ResponseParameters") or {}).items()
                        },
                        "responseTemplates": props.get("ResponseTemplates") or {},
                    }
        stack.apis.append(
            DeployedApi(
                logical_id=logical_id,
                api_id=stack.physical_ids.get(logical_id, logical_id.lower()),
                name=str(properties.get("Name") or logical_id),
                body=body,
                stage_name=str(stage.get("StageName") or "prod"),
                stage=stage,
                gateway_responses=responses,
            )
        )


def _create_subscriptions(emulator: Emulator, stack: DeployedStack, emulated: Mapping[str, Any]) -> None:
    """Create the template's ``AWS::SNS::Subscription`` resources through moto's SNS API."""
    sns = emulator.client("sns")
    for logical_id, resource in stack.translated["Resources"].items():
        if resource.get("Type") != "AWS::SNS::Subscription" or logical_id not in emulated:
            continue  # not this type, or its Condition is false
        properties = emulated[logical_id]
        protocol = str(properties.get("Protocol", ""))
        if protocol != "sqs":
            logger.warning("subscription %s (%s) has no local delivery; skipped", logical_id, protocol)
            continue
        attributes = {
            name: value if isinstance(value, str) else json.dumps(value)
            for name in (
                "DeliveryPolicy",
                "FilterPolicy",
                "FilterPolicyScope",
                "RawMessageDelivery",
                "RedrivePolicy",
            )
            if (value := properties.get(name)) is not None
        }
        if "RawMessageDelivery" in attributes:
            attributes["RawMessageDelivery"] = str(properties["RawMessageDelivery"]).lower()
        response = sns.subscribe(
            TopicArn=properties["TopicArn"],
            Protocol=protocol,
            Endpoint=properties["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        stack.physical_ids[logical_id] = response["SubscriptionArn"]
        stack.subscriptions.append(response["SubscriptionArn"])
