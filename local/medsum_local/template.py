"""Load ``template.yaml``, translate it with aws-sam-translator offline, and fit it to moto.

The offline stack and the template tests both build their resources from the real SAM template:

1. :func:`load_template` reads the YAML (CloudFormation short tags such as ``!Ref`` / ``!Sub`` /
   ``!GetAtt`` become their long ``{"Ref": ...}`` / ``{"Fn::Sub": ...}`` forms).
2. :func:`translate` points local ``CodeUri`` / ``ContentUri`` / ``DefinitionUri`` paths at S3 objects
   and runs the SAM transform with no network access.
3. :func:`strip_unsupported` removes the resource types moto's CloudFormation cannot create
   (:data:`MOTO_UNSUPPORTED_TYPES`), so ``create_stack`` on the result reaches ``CREATE_COMPLETE``.

:func:`with_overrides` changes literal values of the loaded template before translation, for local runs
that need settings the template does not expose as parameters (a benchmark's shortened timeouts).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.parser.parser import Parser
from samtranslator.public.translator import Translator

__all__ = [
    "MOTO_BROKEN_TYPES",
    "MOTO_MISSING_TYPES",
    "MOTO_UNSUPPORTED_TYPES",
    "load_template",
    "referenced_logical_ids",
    "strip_unsupported",
    "translate",
    "with_overrides",
]

Template = dict[str, Any]

#: CloudFormation resource types that moto 5.2.x's CloudFormation has no model for: it only logs
#: "No Moto CloudFormation support" and skips them, so anything referencing them would resolve to nothing.
#: The offline stack emulates what matters (API stage settings and gateway responses in its own gateway);
#: queue, topic and bucket policies are not enforced locally, and alarms / e-mail subscriptions have no local
#: meaning.
MOTO_MISSING_TYPES: frozenset[str] = frozenset(
    {
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::GatewayResponse",
        "AWS::ApiGateway::Stage",
        "AWS::CloudWatch::Alarm",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
    }
)

#: Types moto models but cannot create from this template: moto's ``AWS::ApiGateway::RestApi`` ignores
#: ``Body`` (the OpenAPI definition SAM generates from the function events), so the API has no methods and
#: ``AWS::ApiGateway::Deployment`` fails with "The REST API doesn't contain any methods". The offline
#: gateway serves the routes from the translated RestApi's ``Body`` itself.
MOTO_BROKEN_TYPES: frozenset[str] = frozenset({"AWS::ApiGateway::Deployment"})

#: Every resource type :func:`strip_unsupported` removes before ``create_stack`` in moto.
MOTO_UNSUPPORTED_TYPES: frozenset[str] = MOTO_MISSING_TYPES | MOTO_BROKEN_TYPES

#: (SAM resource type, property) pairs that hold a local path which ``sam build`` / ``sam package``
#: would upload to S3; the translator only accepts S3 locations there.
_LOCAL_ARTIFACT_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("AWS::Serverless::Function", "CodeUri"),
    ("AWS::Serverless::LayerVersion", "ContentUri"),
    ("AWS::Serverless::StateMachine", "DefinitionUri"),
    ("AWS::Serverless::Api", "DefinitionUri"),
)

_SHORT_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "And",
            "Base64",
            "Cidr",
            "Equals",
            "FindInMap",
            "GetAZs",
            "If",
            "ImportValue",
            "Join",
            "Length",
            "Not",
            "Or",
            "Select",
            "Split",
            "Sub",
            "ToJsonString",
            "Transform",
        )
    },
}


class _CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that understands CloudFormation's short-form intrinsic tags."""


# CloudFormation reads an unquoted 2012-10-17 as the string it looks like, not as a date (which would
# also make the translated template impossible to serialize as JSON).
_CfnLoader.yaml_implicit_resolvers = {
    first_char: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: _CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node.tag}", node.start_mark)


def _short_tag_constructor(long_name: str) -> Callable[[_CfnLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        return {long_name: _construct_node(loader, node)}

    return construct


def _construct_get_att(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if isinstance(value, str):
        # "!GetAtt Resource.Attribute.With.Dots" -> ["Resource", "Attribute.With.Dots"]
        value = value.split(".", 1)
    return {"Fn::GetAtt": value}


for _tag, _long_name in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _short_tag_constructor(_long_name))
_CfnLoader.add_constructor("!GetAtt", _construct_get_att)


def load_template(path: str | Path) -> Template:
    """Load a CloudFormation/SAM YAML template, expanding short-form intrinsic functions.

    Parameters
    ----------
    path
        Path of the template (e.g. ``template.yaml`` at the repository root).

    Returns
    -------
    dict
        The template with ``!Ref x`` as ``{"Ref": "x"}``, ``!GetAtt a.b`` as
        ``{"Fn::GetAtt": ["a", "b"]}``, ``!Sub s`` as ``{"Fn::Sub": "s"}`` and so on.

    Raises
    ------
    ValueError
        If the document is not a mapping with a ``Resources`` section.
    """
    text = Path(path).read_text(encoding="utf-8")
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ValueError(f"{path} is not a CloudFormation template (no Resources mapping)")
    return document


def with_overrides(template: Template, overrides: Mapping[str, str]) -> Template:
    """A copy of ``template`` with literal values replaced: ``{"Resources.WorkQueue.Properties.
    VisibilityTimeout": "144", "Parameters.LeaseSeconds.MinValue": "24"}``.

    Each key is a dotted path of mapping keys. The path must exist and hold a literal (number, string
    or boolean), not an intrinsic function or a structure, so an override cannot add settings and
    fails loudly when the template changes under it; the new value keeps the old one's type
    (``"144"`` stays a number where the template has a number).

    Raises
    ------
    ValueError
        For a path that does not exist or does not hold a literal, or a value of the wrong type.
    """
    result = copy.deepcopy(template)
    for path, raw in overrides.items():
        *parents, leaf = path.split(".")
        node: Any = result
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ValueError(f"template override {path!r}: no such setting in the template")
        current = node[leaf]
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"template override {path!r}: {raw!r} is not true or false")
            node[leaf] = raw.lower() == "true"
        elif isinstance(current, int | float):
            try:
                node[leaf] = int(raw) if isinstance(current, int) else float(raw)
            except ValueError:
                raise ValueError(f"template override {path!r}: {raw!r} is not a number") from None
        elif isinstance(current, str):
            node[leaf] = raw
        else:
            raise ValueError(f"template override {path!r}: the template's value is not a literal")
    return result


def _with_s3_artifacts(template: Template, code_uri_to_s3: Callable[[str], tuple[str, str]]) -> Template:
    """Return a copy of ``template`` whose local artifact paths are ``s3://bucket/key`` URIs."""
    result = copy.deepcopy(template)

    def rewrite(properties: dict[str, Any], prop: str) -> None:
        value = properties.get(prop)
        if isinstance(value, str) and not value.startswith("s3://"):
            bucket, key = code_uri_to_s3(value)
            properties[prop] = f"s3://{bucket}/{key}"

    for resource in result["Resources"].values():
        if not isinstance(resource, dict):
            continue
        for resource_type, prop in _LOCAL_ARTIFACT_PROPERTIES:
            if resource.get("Type") == resource_type and isinstance(resource.get("Properties"), dict):
                rewrite(resource["Properties"], prop)
    global_function = result.get("Globals", {}).get("Function")
    if isinstance(global_function, dict):
        rewrite(global_function, "CodeUri")
    return result


def translate(
    template: Template,
    region: str,
    code_uri_to_s3: Callable[[str], tuple[str, str]],
    *,
    parameter_values: Mapping[str, Any] | None = None,
) -> Template:
    """Translate a SAM template to plain CloudFormation, offline.

    Parameters
    ----------
    template
        The SAM template, as returned by :func:`load_template`. It is not modified.
    region
        Region used for ``AWS::Region`` / ``AWS::Partition`` during translation.
    code_uri_to_s3
        Maps a local artifact path as written in the template (``"functions/api/"``, ``"shared/"``)
        to the ``(bucket, key)`` where the caller uploaded (or will upload) its zip.
    parameter_values
        Template parameter overrides; parameters not given take their ``Default``.

    Returns
    -------
    dict
        The CloudFormation template (no ``Transform``, no ``AWS::Serverless::*`` resources).

    Raises
    ------
    samtranslator.model.exceptions.InvalidDocumentException
        If the template is not valid SAM.

    Notes
    -----
    No network access: managed policies referenced by *name* cannot be resolved (the map is empty),
    so the template must use ARNs or inline statements, which it does. The translator keeps the
    region in a class attribute (``ArnGenerator.BOTO_SESSION_REGION_NAME``), so concurrent
    translations for different regions in one process are not supported.
    """
    sam_template = _with_s3_artifacts(template, code_uri_to_s3)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))

    def no_managed_policies() -> dict[str, str]:
        return {}

    translated: Template = translator.translate(
        sam_template,
        parameter_values=dict(parameter_values or {}),
        get_managed_policy_map=no_managed_policies,
    )
    return translated


def referenced_logical_ids(node: Any) -> Iterator[str]:
    """Yield the logical ids that ``node`` refers to through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``.

    Parameters
    ----------
    node
        Any part of a template (a resource, its properties, an output, ...).

    Yields
    ------
    str
        Each logical id (or parameter / pseudo parameter name), possibly more than once.
    """
    if isinstance(node, list):
        for item in node:
            yield from referenced_logical_ids(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "Ref" and isinstance(value, str):
            yield value
        elif key == "Fn::GetAtt":
            target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
            if isinstance(target, str):
                yield target
        elif key == "Fn::Sub":
            text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
            if isinstance(text, str):
                yield from _sub_references(text, variables if isinstance(variables, dict) else {})
            yield from referenced_logical_ids(variables)
        else:
            yield from referenced_logical_ids(value)


def _sub_references(text: str, variables: Mapping[str, Any]) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        if end == -1:
            return
        name = text[start + 2 : end]
        if not name.startswith("!"):
            base = name.split(".", 1)[0]
            if base not in variables:
                yield base
        start = text.find("${", end)


def strip_unsupported(translated: Template) -> Template:
    """Return a copy of a translated template without the resources moto cannot create.

    Resources whose type is in :data:`MOTO_UNSUPPORTED_TYPES` are removed, together with the
    ``DependsOn`` entries naming them. Anything else still *referencing* a removed resource (by
    ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``) is an error, not silently dropped: it would mean the local
    stack misses something the application needs.

    Parameters
    ----------
    translated
        A CloudFormation template, as returned by :func:`translate`. It is not modified.

    Returns
    -------
    dict
        The template to pass to moto's ``create_stack``.

    Raises
    ------
    ValueError
        If a kept resource or an output references a removed resource.
    """
    result = copy.deepcopy(translated)
    resources: dict[str, Any] = result["Resources"]
    removed = {
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") in MOTO_UNSUPPORTED_TYPES
    }
    for logical_id in removed:
        del resources[logical_id]

    dangling: list[str] = []
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn")
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        if isinstance(depends_on, list):
            kept = [name for name in depends_on if name not in removed]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn", None)
        dangling += [f"{logical_id} -> {name}" for name in set(referenced_logical_ids(resource)) & removed]
    for name, output in result.get("Outputs", {}).items():
        dangling += [f"output {name} -> {ref}" for ref in set(referenced_logical_ids(output)) & removed]
    if dangling:
        raise ValueError("resources moto cannot create are still referenced: " + ", ".join(sorted(dangling)))
    return result
