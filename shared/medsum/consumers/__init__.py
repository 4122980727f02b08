"""The dependencies of the event-driven functions (worker, notifier, ingest), one module each.

As for the HTTP functions (``medsum.http.deps``): ``lambda_handler(event, context, deps=None)``; on AWS
``deps`` is built once per cold start from the validated settings (``from_settings``); tests pass their
own (fakes at the ports, or the adapters of a moto account). One module per function, so that a function
imports only its own adapters (cold start).
"""
