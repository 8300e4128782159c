from rest_framework import serializers

from tracker.models import ApiToken, Membership, Organization, User


class OrganizationSerializer(serializers.ModelSerializer):
    """`name` and `acronym` in the request's language (Accept-Language), or the other one's;
    `name_en`, `name_ko`, `acronym_en`, `acronym_ko` each version (null when missing)."""

    is_government = serializers.BooleanField(read_only=True)
    website = serializers.CharField(read_only=True, help_text="A URL, or empty.")
    aliases = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Other names texts use for it (readout intake finds it by them).",
    )

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "name_en",
            "name_ko",
            "acronym",
            "acronym_en",
            "acronym_ko",
            "kind",
            "country",
            "parent",
            "website",
            "aliases",
            "is_government",
        ]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["organization", "role"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "time_zone",
            "language",
            "memberships",
        ]
        read_only_fields = ["id", "username", "email", "memberships"]


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The full token. Shown only in this response: store it now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, write_only=True)
    name = serializers.CharField(max_length=100, required=False, default="API login")
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, default=ApiToken.Scope.READ)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
