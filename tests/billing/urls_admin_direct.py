"""The admin site's own URLs only: its login reached without the project's wrapping view."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
