"""Pages of the notifications app outside the admin and the API (included by tracker/urls.py
under `calendar/<key>.ics`)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.calendar_feed, name="calendar-feed"),
]
