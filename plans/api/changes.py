"""GET /api/v1/changes/?after=<instant>: deletions and departures for a syncing client
(plans.changes; docs/integration/sync.md shows the loop)."""

from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from plans import changes
from tracker.filtersets import InstantField

KINDS = [
    "task", "plan", "workstream", "plan-participant", "forum", "outcome", "organization",
    "webhook",
]  # fmt: skip


class _Query(forms.Form):
    after = InstantField(required=False)


class ChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS, help_text="The list the row belongs to.")
    id = serializers.IntegerField()
    op = serializers.ChoiceField(
        choices=[changes.UPSERT, changes.DELETE],
        help_text="delete: drop the row (and what hangs under it); upsert: read it again "
        "(GET /<kind>s/<id>/, then its children).",
    )
    at = serializers.DateTimeField(help_text="When it happened (the last recorded change).")


class FeedSerializer(serializers.Serializer):
    until = serializers.DateTimeField(
        help_text="The server's clock when the feed was read: your next `after` and "
        "`updated_after` (less your overlap window)."
    )
    full_sync_required = serializers.BooleanField(
        help_text="true: your access changed (or no `after`, or too many changes): re-read "
        "every list without `updated_after` and drop what it no longer returns."
    )
    results = ChangeSerializer(many=True)


class ChangeFeedView(APIView):
    @extend_schema(
        summary="What left your view since an instant (for incremental sync)",
        description="Lists give what changed (`updated_after`); this gives what went away: "
        "deleted rows and rows that left your scope, oldest first, only of rows you could "
        "see. A delete implies what hangs under the row (a task's status updates; a plan's "
        "workstreams, participants and tasks). See docs/integration/sync.md.",
        parameters=[
            OpenApiParameter(
                "after",
                OpenApiTypes.DATETIME,
                description="ISO 8601 instant with an offset: the `until` of your last sync "
                "less an overlap window. Without it: full_sync_required.",
            )
        ],
        responses={200: FeedSerializer},
    )
    def get(self, request):
        query = _Query(request.query_params)
        if not query.is_valid():
            raise serializers.ValidationError(query.errors)
        feed = changes.change_feed(reader=request.user, after=query.cleaned_data["after"])
        return Response(FeedSerializer(feed).data)
