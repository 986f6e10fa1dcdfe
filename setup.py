"""Optional: the request path's modules compiled with mypyc (README, "Performance").

Without OBSERVABILITY_MYPYC=1 this does nothing: the project is pure Python, as
pyproject.toml describes it, and needs no compiler. With it (and mypy, which ships mypyc,
and a C compiler), `python setup.py build_ext --inplace` puts a compiled extension next to
each module in COMPILED; Python then imports the extension instead of the .py beside it.
`make compiled` does that in a copy of the tree (.venv-compiled/src), never in the checkout:
an edited .py must never hide behind a stale extension.

mypyc type-checks with the project's mypy settings (pyproject.toml, django-stubs' plugin
loads config.settings): SECRET_KEY must be set.
"""

from __future__ import annotations

import os

from setuptools import setup

#: Every module a request runs through (middleware, lifecycle, lines, masking, output,
#: filters and formatters, metrics, tracing). Left out, pure Python:
#: - observability/http/streaming.py: async generators (mypyc: "unimplemented");
#: - observability/output/rotation.py: a logging.Handler subclass; compiled, its instances
#:   are freed without clearing the weak references logging keeps to every handler
#:   (logging.shutdown then crashed the interpreter at exit);
#: - the package __init__ files (they only re-export);
#: - the rest of observability (viewer, logtrace, conf, guard, spans, events...): off the
#:   per-request path or not measured (bench/results/mypyc.md).
COMPILED = [
    "observability/middleware.py",
    "observability/memo.py",
    "observability/filters.py",
    "observability/formatters.py",
    "observability/http/emit.py",
    "observability/http/id_quota.py",
    "observability/http/lifecycle.py",
    "observability/http/reuse.py",
    "observability/http/sampling.py",
    "observability/http/seen_ids.py",
    "observability/lines/ecs.py",
    "observability/lines/fields.py",
    "observability/lines/line.py",
    "observability/lines/messages.py",
    "observability/lines/textline.py",
    "observability/masking/card_tokens.py",
    "observability/masking/cards.py",
    "observability/masking/cut.py",
    "observability/masking/escaping.py",
    "observability/masking/keys.py",
    "observability/masking/percent.py",
    "observability/masking/query.py",
    "observability/masking/redaction.py",
    "observability/monitoring/instruments.py",
    "observability/monitoring/labels.py",
    "observability/monitoring/metrics.py",
    "observability/monitoring/system.py",
    "observability/output/filemodes.py",
    "observability/output/loggers.py",
    "observability/output/records.py",
    "observability/output/termination.py",
    "observability/output/writer.py",
    "observability/shared/slots.py",
    "observability/tracing/client_ip.py",
    "observability/tracing/context.py",
    "observability/tracing/ids.py",
    "observability/tracing/keyed.py",
    "observability/tracing/otel.py",
    "observability/tracing/request.py",
    "observability/tracing/routes.py",
    "observability/tracing/tracecontext.py",
]

if os.environ.get("OBSERVABILITY_MYPYC") == "1":
    from mypyc.build import mypycify

    setup(ext_modules=mypycify(COMPILED, opt_level="3"))
else:
    setup()
