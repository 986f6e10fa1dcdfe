"""The project's URLs plus views that only tests need (async, streaming, failing, slow)."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from billing.logging_utils import log_api_request
from observability import get_context

logger = logging.getLogger("billing.views")
clock = {"freezer": None, "advance": 0.0}


def _advance():
    if clock["freezer"] is not None and clock["advance"]:
        clock["freezer"].tick(clock["advance"])


def plain_view(request):
    _advance()
    logger.info("plain view ran")
    return HttpResponse("ok")


async def async_view(request):
    logger.info("async view before await")
    await asyncio.sleep(float(request.GET.get("gap", "0")))
    logger.info("async view after await")
    return JsonResponse({"context": get_context()})


@sync_to_async
def _sync_part():
    logger.info("sync part of async view")
    return get_context()["request_id"]


async def async_calls_sync_view(request):
    rid = await _sync_part()
    return JsonResponse({"request_id": rid})


def boom_view(request):
    logger.info("about to fail")
    raise ValueError("kaboom")


def streaming_view(request):
    def chunks():
        for i in range(3):
            logger.info("streaming chunk %s", i)
            yield f"chunk{i}\n".encode()

    return StreamingHttpResponse(chunks())


async def async_streaming_view(request):
    async def chunks():
        for i in range(3):
            logger.info("async streaming chunk %s", i)
            yield f"chunk{i}\n".encode()

    return StreamingHttpResponse(chunks())


@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
def drf_whoami(request):
    logger.info("whoami for %s", request.user.username)
    _advance()
    return Response({"context": get_context()})


@api_view(["POST"])
@permission_classes([AllowAny])
@log_api_request
def decorated_payment(request):
    logger.info("decorated view ran")
    _advance()
    return Response({"status": "success"}, status=201)


@log_api_request
def decorated_plain(request):
    logger.info("decorated plain view ran")
    return HttpResponse("ok")


@log_api_request
async def decorated_async(request):
    logger.info("decorated async view ran")
    return HttpResponse("ok")


@api_view(["GET"])
@permission_classes([AllowAny])
@log_api_request
def decorated_boom(request):
    raise RuntimeError("decorated failure")


urlpatterns = [
    path("t/plain/", plain_view),
    path("t/async/", async_view),
    path("t/async-sync/", async_calls_sync_view),
    path("t/boom/", boom_view),
    path("t/stream/", streaming_view),
    path("t/astream/", async_streaming_view),
    path("t/whoami/", drf_whoami),
    path("t/decorated/", decorated_payment),
    path("t/decorated-plain/", decorated_plain),
    path("t/decorated-async/", decorated_async),
    path("t/decorated-boom/", decorated_boom),
]

handler404 = "billing.exception_handler.not_found"
handler500 = "billing.exception_handler.server_error"


def card_error_view(request):
    int("4111 1111 1111 1111")  # ValueError whose message holds the card number


def call_out_view(request):
    """Call another service (a URL from the query) through one of the integrations."""
    from observability.clients import traced_httpx_client, traced_session

    url, via = request.GET["url"], request.GET["via"]
    logger.info("calling out via %s", via)
    if via == "requests":
        traced_session().get(url, timeout=5)
    else:
        with traced_httpx_client(timeout=5) as client:
            client.get(url)
    return HttpResponse("ok")


async def call_out_async_view(request):
    from observability.clients import traced_async_httpx_client

    async with traced_async_httpx_client(timeout=5) as client:
        await client.get(request.GET["url"])
    return HttpResponse("ok")


def raise_view(request):
    raise ValueError(f"bad card {request.GET.get('c', '')}")


def log_channels_view(request):
    card = request.GET.get("c", "")
    logger.info("charging %s", card)
    logger.info("extra carries it", extra={"note": f"card {card}"})
    from observability import log_billing_event

    log_billing_event(event_type="payment_created", details={"memo": f"paid with {card}"})
    return HttpResponse("ok")


def flushing_view(request):
    from observability import flush_logs

    logger.info("before flush")
    flush_logs()  # the started line is on disk before the completed line is queued
    return HttpResponse("ok")


urlpatterns += [
    path("t/flush/", flushing_view),
    path("t/card-error/", card_error_view),
    path("t/raise/", raise_view),
    path("t/call/", call_out_view),
    path("t/call-async/", call_out_async_view),
    path("t/channels/", log_channels_view),
    path("", include("config.urls")),
]
