from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class Ping(APIView):
    authentication_classes = ()
    permission_classes = ()

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("api/v1/ping/", Ping.as_view())]
