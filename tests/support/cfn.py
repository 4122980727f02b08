"""A small evaluator of CloudFormation intrinsic functions, for tests that ask what a template *resolves* to
for given parameter values (which IAM statements a role ends up with, for example).

It covers what ``template.yaml`` uses in conditions and policies: ``Ref`` (parameters, pseudo parameters,
``AWS::NoValue``), ``Fn::Sub`` (with and without a variable map), ``Fn::If``, ``Fn::Select``,
``Fn::Split``, ``Fn::Join``, ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or`` and ``Condition``.
``Ref`` to a resource and ``Fn::GetAtt`` become readable placeholders (``<Resource>``, ``<Resource.Arn>``).
Anything else raises, so a template change the evaluator does not understand fails loudly instead of
resolving to something plausible. ``tests/template`` checks it against moto's CloudFormation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

_NO_VALUE: Final = object()

PSEUDO_PARAMETERS: Final = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "medsum-test",
    "AWS::URLSuffix": "amazonaws.com",
}


class Evaluator:
    """Resolve parts of ``template`` with ``parameters`` over the declared defaults."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
        pseudo: Mapping[str, str] | None = None,
    ) -> None:
        declared = template.get("Parameters") or {}
        self.parameters: dict[str, str] = {
            name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec
        }
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise KeyError(f"not template parameters: {sorted(unknown)}")
        self.parameters.update(parameters or {})
        self.pseudo = {**PSEUDO_PARAMETERS, **(pseudo or {})}
        self.resources = set(template.get("Resources") or {})
        self._conditions: Mapping[str, Any] = template.get("Conditions") or {}
        self._resolved: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        """The value of the template condition ``name``."""
        if name not in self._resolved:
            value = self._condition(self._conditions[name])
            self._resolved[name] = value
        return self._resolved[name]

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function evaluated (``AWS::NoValue`` entries dropped)."""
        value = self._eval(node)
        if value is _NO_VALUE:
            raise ValueError("the node itself resolved to AWS::NoValue")
        return value

    # ---------------------------------------------------------------------------------------------------
    def _condition(self, node: Any) -> bool:
        if not isinstance(node, dict) or len(node) != 1:
            raise ValueError(f"not a condition: {node!r}")
        ((function, args),) = node.items()
        if function == "Condition":
            return self.condition(args)
        if function == "Fn::Equals":
            left, right = (self._eval(arg) for arg in args)
            return bool(str(left) == str(right))
        if function == "Fn::Not":
            (inner,) = args
            return not self._condition(inner)
        if function == "Fn::And":
            return all(self._condition(arg) for arg in args)
        if function == "Fn::Or":
            return any(self._condition(arg) for arg in args)
        raise ValueError(f"unsupported condition function {function}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return f"<{name}>"
        raise KeyError(f"Ref to an unknown name {name}")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return f"<{name}>"
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _eval(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self._eval(item) for item in node) if value is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            if key == "Ref":
                return self._ref(args)
            if key == "Fn::GetAtt":
                target = args if isinstance(args, str) else ".".join(args)
                return f"<{target}>"
            if key == "Fn::If":
                name, when_true, when_false = args
                return self._eval(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                text, variables = (args[0], args[1]) if isinstance(args, list) else (args, {})
                return self._sub(text, {name: self._eval(value) for name, value in variables.items()})
            if key == "Fn::Select":
                index, values = args
                return self._eval(values)[int(self._eval(index))]
            if key == "Fn::Split":
                delimiter, text = args
                return str(self._eval(text)).split(delimiter)
            if key == "Fn::Join":
                delimiter, values = args
                return delimiter.join(str(value) for value in self._eval(values))
            if key.startswith("Fn::") or key == "Condition":
                raise ValueError(f"unsupported intrinsic function {key}")
        return {
            key: value
            for key, value in ((k, self._eval(v)) for k, v in node.items())
            if value is not _NO_VALUE
        }
