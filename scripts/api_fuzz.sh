#!/usr/bin/env bash
# Schemathesis against the live API: a real gunicorn server on a scratch database with the
# demo data, every operation of /api/schema/ exercised with generated input, as coordinator.kr.
# Fails on any server error (5xx) or response that does not match the schema. Revoking tokens
# is left out (it would revoke the very token the run uses); tests cover it.
#   FUZZ_DATABASE_URL (default: a scratch SQLite file under var/) and FUZZ_MAX_TIME (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# A free port unless FUZZ_PORT says which (several checkouts may fuzz on one machine).
PORT=${FUZZ_PORT:-$($BIN/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export DATABASE_URL="${FUZZ_DATABASE_URL:-sqlite:///$PWD/var/fuzz.sqlite3}"
export DJANGO_DEBUG=0
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-fuzz-only-not-a-secret}"
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
export DJANGO_SECURE_COOKIES=0
export DJANGO_SECURE_SSL_REDIRECT=0  # plain HTTP on 127.0.0.1: no redirect to HTTPS
export API_THROTTLE_TOKEN=1000000/minute API_THROTTLE_USER=1000000/minute
export CELERY_TASK_ALWAYS_EAGER=0
unset REDIS_URL  # the fuzzed server enqueues to the filesystem broker; nothing consumes it

case "$DATABASE_URL" in
  sqlite:*) rm -f "${DATABASE_URL#sqlite://}" ;;
  postgres*)
    $BIN/python - <<'PY'
import os, psycopg
from urllib.parse import urlsplit
url = urlsplit(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as c:
    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    c.execute(f'CREATE DATABASE "{name}"')
PY
    ;;
esac

$BIN/python manage.py migrate --noinput -v0
$BIN/python manage.py collectstatic --noinput -v0  # DEBUG off: pages need the manifest
$BIN/python manage.py seed_demo --force >/dev/null
TOKEN=$($BIN/python manage.py shell -c "
from tracker.models import User
from tracker.services import api_token_create
user = User.objects.get(username='coordinator.kr')
print(api_token_create(actor=user, user=user, name='fuzz', scope='read_write')[1])" | tail -n 1 | tr -d '[:space:]')

$BIN/gunicorn tracker.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 \
  --access-logfile /dev/null --error-logfile var/fuzz-server.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT

# CPython 3.11.7's AST constructor can raise a spurious "SystemError: AST constructor recursion
# depth mismatch" (gh-106905, fixed in later releases); Hypothesis calls ast.parse to describe
# its strategies, and one CI run failed on it with no fault of the API. Such a run is repeated
# once with the same seed (so a real failure it also found comes back); anything else fails.
fuzz() {
  $BIN/st run "http://127.0.0.1:$PORT/api/schema/" \
    --wait-for-schema 30 \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --phases examples,coverage,fuzzing \
    --exclude-operation-id v1_tokens_destroy \
    --max-time "${FUZZ_MAX_TIME:-120}" \
    --workers 2 \
    --no-color "$@" 2>&1 | tee var/fuzz.log
}
if ! fuzz; then
  if grep -q "AST constructor recursion depth mismatch" var/fuzz.log; then
    seed=$(sed -n 's/^Seed: //p' var/fuzz.log | tail -n 1)
    echo "Schemathesis met CPython's gh-106905 (above); running again with seed $seed."
    fuzz ${seed:+--seed "$seed"}
  else
    exit 1
  fi
fi
