"""gunicorn settings shared by docker-compose, the test suite's and the benchmarks' servers.

    gunicorn leadrecord.wsgi --config python:leadrecord.gunicorn_config [--access-logfile -]

Command-line options still win (bind, workers, timeouts, where the access
log goes).

Each worker serves with ``GUNICORN_THREADS`` threads (1, the plain sync worker, unless
set). More threads let a worker answer a short read while a long bulk post of its own
is still writing, at a cost in requests per second on few cores (the threads of one
worker share its interpreter); more workers do the same without that cost, memory
permitting.

What this module also fixes is what a log line may hold: the access
log names the path without its query string (``%(U)s`` instead of the
request line ``%(r)s``) and leaves out the Referer, which carries the
previous page's query; searches put emails and names there
(``leadrecord.logs``).
"""

import os

from gunicorn.glogging import Logger

from leadrecord.logs import WithoutQueryStrings

# gunicorn's default format with "%(m)s %(U)s %(H)s" for "%(r)s" and no "%(f)s".
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'


class QueryFreeLogger(Logger):
    """gunicorn's logger whose error log drops query strings from request URIs too."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        self.error_log.addFilter(WithoutQueryStrings())


logger_class = QueryFreeLogger

threads = int(os.environ.get("GUNICORN_THREADS", "1"))
