"""The API's calls, one module per resource, each a :class:`~medsum_cli.transport.Transport` subclass.

:mod:`~medsum_cli.resources.reports` (``/summarize``, ``/reports``, ``/patients/{pid}/reports``),
:mod:`~medsum_cli.resources.batches` (``/batches``), :mod:`~medsum_cli.resources.uploads`
(``/batches/uploads`` and the presigned PUT), :mod:`~medsum_cli.resources.webhooks` (``/webhooks``,
deliveries) and :mod:`~medsum_cli.resources.admin` (``/admin``: operators). They only say which route
to call with what; signing, retries, timeouts and errors are the transport's.
:class:`medsum_cli.client.MedsumClient` has them all.
"""
