"""Operator calls (``/admin``): the dead-letter queue, redrives, purges, report retries and the audit trail.

The API answers ``403`` to anyone not named in ``OperatorPrincipalArns`` (on the local stack: sign as
``--identity operator``). Built on :class:`~medsum_cli.transport.Transport`.
"""

from __future__ import annotations

from medsum_cli.transport import JSONObject, Transport, page_params, segment


class AdminCalls(Transport):
    """The operator routes of the API (see :class:`~medsum_cli.transport.Transport` for the parameters)."""

    def dlq_summary(self) -> JSONObject:
        """Dead-lettered work counted by error code and by age (``GET /admin/dlq/summary``)."""
        return self._call("GET", "/admin/dlq/summary")

    def dlq_list(
        self,
        *,
        error_code: str | None = None,
        older_than: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> JSONObject:
        """One page of dead-lettered work, oldest failure first (``GET /admin/dlq``)."""
        params = page_params(limit, next_token)
        if error_code:
            params["error_code"] = error_code
        if older_than:
            params["older_than"] = older_than
        return self._call("GET", "/admin/dlq", params=params)

    def dlq_show(self, report_id: str) -> JSONObject:
        """The dead-lettered work of one report (``GET /admin/dlq/reports/{id}``)."""
        return self._call("GET", f"/admin/dlq/reports/{segment(report_id)}")

    def dlq_redrive(self, body: JSONObject) -> JSONObject:
        """Start or continue (``{"job_id"}``) a redrive job (``POST /admin/dlq/redrive``)."""
        return self._call("POST", "/admin/dlq/redrive", body=body)

    def dlq_purge(self, body: JSONObject) -> JSONObject:
        """Delete dead-lettered work; its reports stay FAILED (``POST /admin/dlq/purge``)."""
        return self._call("POST", "/admin/dlq/purge", body=body)

    def audit(self, limit: int | None = None, next_token: str | None = None) -> JSONObject:
        """Operator actions, newest first (``GET /admin/audit``)."""
        return self._call("GET", "/admin/audit", params=page_params(limit, next_token))

    def retry_report(self, report_id: str, reason: str) -> JSONObject:
        """Retry a report that failed non-retryably (``POST /admin/reports/{id}/retry``)."""
        return self._call("POST", f"/admin/reports/{segment(report_id)}/retry", body={"reason": reason})
