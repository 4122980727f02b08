"""``medsum``: the command-line client of the medsum clinical report summarization API.

Where things are:

- :mod:`medsum_cli.main`: the parser, built from the command modules, and dispatch (exit codes).
- :mod:`medsum_cli.commands`: the commands, one module per resource (``reports``, ``batches``,
  ``operators``, ``webhooks``) and what they share (``common``).
- :mod:`medsum_cli.client`: :class:`~medsum_cli.client.MedsumClient`, the API client, made of
  :mod:`medsum_cli.transport` (session, signing, timeouts, retries, errors) and
  :mod:`medsum_cli.resources` (each resource's calls).
- :mod:`medsum_cli.signing`: SigV4 signing with botocore (also used by the tests' local-stack client).
- :mod:`medsum_cli.config`: local stack discovery and credential resolution.
- :mod:`medsum_cli.render`: human-readable output with rich.
- :mod:`medsum_cli.batch_input`: batch input (reading, local checks, splitting into requests).
- :mod:`medsum_cli.webhook_listener`: the local receiver of ``medsum webhooks listen``.
"""

from medsum_cli._version import __version__

__all__ = ["__version__"]
