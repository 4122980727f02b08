"""Run the template's Step Functions state machines for real in the emulator.

moto ships a Step Functions *engine* (its ASL interpreter, on when ``stepfunctions:
execute_state_machine`` is set in moto's config), but three links around it are missing offline:

1. **Lambda tasks.** moto's Lambda runs functions in Docker. :func:`install` replaces
   ``moto.awslambda.models.LambdaFunction.invoke`` (what moto's ``Invoke`` API and its ASL engine
   call) with a call to an *invoker*: in the local stack, :meth:`FunctionRuntime.invoke` (the
   project's own handler in its sandbox); in tests, anything with that signature. The function is
   named by its ARN; an invoker answers Lambda Invoke's response shape (``Payload``, and
   ``FunctionError`` on failure), which becomes the Invoke API's response, so the engine sees
   ``Lambda.*``/handler errors exactly as on AWS (``errorType`` is the ASL error name).
2. **EventBridge → state machine.** moto's EventBridge rules deliver to a few target types only, and
   not to ``states``. :func:`install` extends ``moto.events.models.Rule.send_to_targets``: targets
   whose ARN is a state machine get ``StartExecution`` with the event as input (the rule, its pattern
   and target come from the deployed template); other targets are left to moto.
3. **State machines created by CloudFormation** land in moto's plain Step Functions backend, which
   the engine does not read. :func:`install` points moto's CloudFormation model at the engine's
   backend, so ``create_stack`` also validates each definition with the engine's ASL parser.

Install before deploying the template, in the process that hosts moto (the emulator's process, or the
test process under ``mock_aws``); :func:`install` returns a function that undoes all of it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Invoker", "install"]

logger = logging.getLogger(__name__)

#: ``invoker(function_arn, event) -> {"Payload": ..., "FunctionError"?: ...}`` (Lambda Invoke's shape).
Invoker = Callable[[str, Any], Mapping[str, Any]]

_lock = threading.Lock()


def install(invoker: Invoker) -> Callable[[], None]:
    """Enable moto's Step Functions engine with Lambda tasks run by ``invoker``, and EventBridge rules
    that start state machines. Returns ``uninstall``. One installation per process at a time."""
    from moto.awslambda import models as lambda_models
    from moto.core.config import default_user_config
    from moto.events import models as events_models
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.utilities.arns import parse_arn

    sfn_config: Any = default_user_config.setdefault("stepfunctions", {})
    previous_flag = sfn_config.get("execute_state_machine", False)
    previous_backends = sfn_models.stepfunctions_backends
    original_invoke = lambda_models.LambdaFunction.invoke
    original_send = events_models.Rule.send_to_targets

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        event = json.loads(body) if body else {}
        result = invoker(self.function_arn, event)
        if "FunctionError" in result:
            response_headers["x-amz-function-error"] = str(result["FunctionError"])
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "Event":
            return ""
        return json.dumps(result.get("Payload")).encode("utf-8")

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        machines = [t for t in self.targets if parse_arn(t["Arn"]).service == "states"]
        others = [t for t in self.targets if t not in machines]
        if machines and self.event_pattern.matches_event(original_event):
            backend = stepfunctions_parser_backends[self.account_id][self.region_name]
            for target in machines:
                # A fresh name each time, as EventBridge does: moto names an unnamed execution "None",
                # so every start after the first would fail (silently: moto's S3 swallows the error).
                execution = backend.start_execution(
                    target["Arn"],
                    name=uuid.uuid4().hex,
                    execution_input=target.get("Input") or json.dumps(original_event),
                )
                logger.info("rule %s started %s", self.name, execution.execution_arn)
        if others:
            with _lock:  # moto's implementation reads self.targets
                kept, self.targets = self.targets, others
                try:
                    original_send(self, original_event, transform_input)
                finally:
                    self.targets = kept

    sfn_config["execute_state_machine"] = True
    sfn_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
    lambda_models.LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]

    def uninstall() -> None:
        sfn_config["execute_state_machine"] = previous_flag
        sfn_models.stepfunctions_backends = previous_backends
        lambda_models.LambdaFunction.invoke = original_invoke  # type: ignore[method-assign]
        events_models.Rule.send_to_targets = original_send  # type: ignore[method-assign]

    return uninstall
