"""The ``medsum`` commands, one module per resource.

:mod:`~medsum_cli.commands.reports` (``submit``, ``get``, ``wait``, ``list``, ``delete``),
:mod:`~medsum_cli.commands.batches` (``batch ...``), :mod:`~medsum_cli.commands.operators` (``dlq ...``,
``audit``) and :mod:`~medsum_cli.commands.webhooks` (``webhooks ...``). Each has
``register(commands, common)``, which adds its sub-parsers and sets their handlers; what they share (the
run's :class:`~medsum_cli.commands.common.Context`, exit codes, option helpers) is in
:mod:`~medsum_cli.commands.common`. :mod:`medsum_cli.main` builds the parser from them and dispatches.
To add a command: write its handler in the module of its resource, register it there.
"""
