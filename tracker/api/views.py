"""Identity endpoints: organizations, the signed-in user, API tokens and password login."""

from django.contrib.auth import authenticate
from django.db import connections
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.filtersets import OrganizationFilterSet
from tracker.login_limits import LOGIN_LOCKED, is_locked_out, retry_after_seconds
from tracker.models import ApiToken, Membership, Organization
from tracker.services import api_token_create, api_token_revoke, user_update_preferences

from . import serializers as s
from .throttling import LoginRateThrottle

BAD_CREDENTIALS = _("Unknown username or wrong password.")


class LoginLocked(exceptions.APIException):
    """Sign-in locked for the account or the client address: 429, Retry-After from `wait`."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = LOGIN_LOCKED
    default_code = "login_locked"

    def __init__(self, wait: int):
        super().__init__()
        self.wait = wait


@extend_schema_view(
    list=extend_schema(summary="List organizations", description="Public records."),
    retrieve=extend_schema(summary="An organization"),
)
class OrganizationViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = r"[0-9]{1,18}"
    queryset = Organization.objects.order_by("name", "id")
    serializer_class = s.OrganizationSerializer
    filterset_class = OrganizationFilterSet


_MEMBERSHIPS_SQL: dict = {}
_SENTINEL_USER_ID = -7_316_004_211


def _memberships(user) -> list[tuple[int, str]]:
    """`user.memberships.values_list("organization_id", "role")`, in Membership's ordering:
    the statement is compiled once per process and database (the user's id its only
    parameter), where Django built and compiled the same joins on every request."""
    alias = user.memberships.db
    sql = _MEMBERSHIPS_SQL.get(alias)
    if sql is None:
        queryset = Membership.objects.using(alias).filter(user_id=_SENTINEL_USER_ID)
        sql, params = queryset.values_list("organization_id", "role").query.sql_with_params()
        if list(params) != [_SENTINEL_USER_ID]:  # not a one-parameter statement: no shortcut
            return list(user.memberships.values_list("organization_id", "role"))
        _MEMBERSHIPS_SQL[alias] = sql
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [user.pk])
        return cursor.fetchall()


def me_data(user) -> dict:
    """MeSerializer's JSON for `user`, written directly: an integration's most frequent identity
    read, where building the ModelSerializer's fields cost more than the query."""
    return {
        "id": user.pk,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "time_zone": user.time_zone,
        "language": user.language,
        "memberships": [
            {"organization": organization_id, "role": role}
            for organization_id, role in _memberships(user)
        ],
    }


class MeView(APIView):
    @extend_schema(summary="The signed-in user, with memberships", responses=s.MeSerializer)
    def get(self, request):
        return Response(me_data(request.user))

    @extend_schema(
        summary="Change your name, time zone or language",
        request=s.MeSerializer,
        responses=s.MeSerializer,
    )
    def patch(self, request):
        serializer = s.MeSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = user_update_preferences(user=request.user, **serializer.validated_data)
        return Response(s.MeSerializer(user).data)


@extend_schema_view(
    list=extend_schema(summary="Your API tokens"),
    retrieve=extend_schema(summary="One of your API tokens"),
    create=extend_schema(
        summary="Create an API token for yourself",
        request=s.ApiTokenSerializer,
        responses={201: s.NewApiTokenSerializer},
    ),
    destroy=extend_schema(summary="Revoke one of your API tokens"),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ApiTokenSerializer
    filterset_class = None
    lookup_value_regex = r"[0-9]{1,18}"
    queryset = ApiToken.objects.none()  # for the schema; requests see only their own

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user).order_by("-id")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, full = api_token_create(
            actor=request.user, user=request.user, **serializer.validated_data
        )
        token.token = full
        return Response(s.NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        api_token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class LoginView(APIView):
    """Username and password in, a new API token out: throttled per client address, and
    refused with 429 while the account or the address is locked (tracker.login_limits)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # wrong credentials answer 401, not 403

    @extend_schema(
        summary="Exchange a username and password for a new API token",
        request=s.LoginSerializer,
        responses={201: s.NewApiTokenSerializer},
        auth=[],
    )
    def post(self, request):
        serializer = s.LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request, username=data["username"], password=data["password"])
        if is_locked_out(request):
            raise LoginLocked(wait=retry_after_seconds(request))
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(BAD_CREDENTIALS)
        token, full = api_token_create(
            actor=user, user=user, name=data["name"], scope=data["scope"],
            expires_at=data["expires_at"],
        )  # fmt: skip
        token.token = full
        return Response(s.NewApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)
