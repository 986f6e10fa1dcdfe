"""Views that query the database, open spans and call out: the story inside a request."""

import threading

from asgiref.sync import sync_to_async
from django.db import connection
from django.db.utils import ConnectionHandler
from django.http import HttpResponse, JsonResponse
from django.urls import include, path

from billing.models import Plan, Subscription
from observability import carry_context, span
from observability.clients import traced_httpx_client, traced_session
from tests.urls import handler404, handler500

__all__ = ["handler404", "handler500", "urlpatterns"]


def n_plus_one_view(request):
    codes = []
    for subscription in Subscription.objects.all():  # one query
        codes.append(subscription.plan.code)  # N+1: the line the warning names
    return JsonResponse({"codes": codes})


def three_queries_view(request):
    Plan.objects.count()
    Subscription.objects.count()
    list(Plan.objects.filter(code="pro")[:1])
    return HttpResponse("ok")


def raw_secret_view(request):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM billing_plan WHERE code = '4111 1111 1111 1111'"
            " OR name = 'password=hunter2-Secret' -- card 4111111111111111"
        )
    return HttpResponse("ok")


def bad_query_view(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT nope FROM no_such_table_here")
    return HttpResponse("unreachable")


def many_view(request):
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE billing_plan SET name = name WHERE code = %s", [("a",), ("b",), ("c",)]
        )
    return HttpResponse("ok")


def thread_view(request):
    """One query here, one in a thread given the context, one on another alias."""
    Plan.objects.count()
    worker = threading.Thread(target=carry_context(lambda: Plan.objects.exists()))
    worker.start()
    worker.join()
    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    other = ConnectionHandler({"default": memory, "other": memory})
    with other["other"].cursor() as cursor:
        cursor.execute("SELECT 1")
    other.close_all()
    return HttpResponse("ok")


async def async_view(request):
    await sync_to_async(Plan.objects.count)()
    async with span("async.work", step="one"):
        await sync_to_async(Plan.objects.exists)()
    return HttpResponse("ok")


def span_view(request):
    with span("outer.block", item="x"):
        Plan.objects.count()
        with span("inner.block"):
            pass
    if request.GET.get("fail"):
        with span("failing.block"):
            raise ValueError("inside the span")
    return HttpResponse("ok")


def call_view(request):
    url, via = request.GET["url"], request.GET["via"]
    if via == "requests":
        status = traced_session().get(url, timeout=5).status_code
    else:
        with traced_httpx_client(timeout=5) as client:
            status = client.get(url).status_code
    return JsonResponse({"status": status})


urlpatterns = [
    path("s/n-plus-one/", n_plus_one_view),
    path("s/three/", three_queries_view),
    path("s/raw-secret/", raw_secret_view),
    path("s/bad-query/", bad_query_view),
    path("s/many/", many_view),
    path("s/thread/", thread_view),
    path("s/async/", async_view),
    path("s/span/", span_view),
    path("s/call/", call_view),
    path("", include("tests.urls")),
]
