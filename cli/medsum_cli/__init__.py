"""``medsum``: the command-line client of the medsum clinical report summarization API.

Modules: :mod:`medsum_cli.main` (argument parsing and dispatch), :mod:`medsum_cli.client` (the SigV4-signed
HTTP client), :mod:`medsum_cli.batch` (batch input: reading, local checks, splitting into requests),
:mod:`medsum_cli.config` (local stack discovery and credential resolution) and :mod:`medsum_cli.render`
(human-readable output with rich).
"""

from medsum_cli._version import __version__

__all__ = ["__version__"]
