#!/usr/bin/env bash
# Generated clients as tests (issue 14): a real gunicorn server on a scratch database with the
# demo data; from its LIVE /api/schema/:
#   1. lint the document: openapi-spec-validator (.venv) and Redocly's recommended rules
#      (clients/redocly.yaml);
#   2. generate a Python client with openapi-python-client (its own venv, var/clientgen: its
#      pins on ruff/typer/pydantic stay out of ours) and run clients/python/smoke.py with it;
#   3. generate TypeScript types with openapi-typescript, type-check clients/typescript/smoke.ts
#      against them (tsc --strict) and run it with openapi-fetch.
# Nothing generated is committed or patched: everything lands in var/clients/.
#   CLIENTS_DATABASE_URL (default: a scratch SQLite file under var/), CLIENTS_PORT (default: a
#   free port). Needs node >= 20.19 and npm (.ci/run installs Debian's when node is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
OUT=$ROOT/var/clients
GEN=$ROOT/var/clientgen
started=$(date +%s)
step() { printf -- '--> %s (%d s)\n' "$*" "$(( $(date +%s) - started ))"; }

PORT=${CLIENTS_PORT:-$($BIN/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export DATABASE_URL="${CLIENTS_DATABASE_URL:-sqlite:///$ROOT/var/clients.sqlite3}"
export DJANGO_DEBUG=0
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-clients-only-not-a-secret}"
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
export DJANGO_SECURE_COOKIES=0
export DJANGO_SECURE_SSL_REDIRECT=0  # plain HTTP on 127.0.0.1: no redirect to HTTPS
export API_THROTTLE_TOKEN=1000000/minute API_THROTTLE_USER=1000000/minute
export CELERY_TASK_ALWAYS_EAGER=0
unset REDIS_URL  # the server enqueues to the filesystem broker; nothing consumes it
export TRACKER_URL="http://127.0.0.1:$PORT"

command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
# Redocly CLI 2 and openapi-typescript 7 need Node 20.19+ (Debian 13's nodejs; Debian 12 has 18).
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || { echo "node $(node --version) is too old: 20.19 or later is needed" >&2; exit 1; }

# The scratch database and the generators at once (migrating is the slow part).
step "scratch database and demo data (in the background); the generators"
# On PostgreSQL a migrated, seeded copy is kept as a template named after the migrations, the
# demo data and the day: the next run on the same cluster clones it in a second instead of
# migrating again (older templates of this database are dropped).
DEMO_KEY=$(cat */migrations/*.py fixtures/*.py plans/management/commands/seed_demo.py \
  | { cat; date +%F; } | sha1sum | cut -c1-10)
export DEMO_KEY
(
  case "$DATABASE_URL" in
    sqlite:*)
      rm -f "${DATABASE_URL#sqlite://}"
      $BIN/python manage.py migrate --noinput -v0
      $BIN/python manage.py seed_demo --force >/dev/null
      ;;
    postgres*)
      $BIN/python - <<'PY'
import os, subprocess, sys, psycopg
from urllib.parse import urlsplit
url = urlsplit(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
template = f"{name}_tpl_{os.environ['DEMO_KEY']}"
admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as c:
    c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone():
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        print(f"cloned {template}")
        sys.exit(0)
    c.execute(f'CREATE DATABASE "{name}"')
    for cmd in (["migrate", "--noinput", "-v0"], ["seed_demo", "--force"]):
        subprocess.run([".venv/bin/python", "manage.py", *cmd], check=True,
                       stdout=subprocess.DEVNULL)
    for (old,) in c.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            [f"{name}_tpl_%"]).fetchall():
        c.execute(f'DROP DATABASE IF EXISTS "{old}"')
    c.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    print(f"migrated, seeded, kept as {template}")
PY
      ;;
  esac
) >"$ROOT/var/clients-setup.log" 2>&1 &
SETUP=$!
SERVER=
trap 'kill $SETUP $SERVER 2>/dev/null || true' EXIT

# openapi-python-client in its own venv; openapi-typescript, openapi-fetch, tsc and Redocly
# from clients/typescript/package-lock.json.
[ -x "$GEN/bin/python" ] || python3 -m venv "$GEN"
"$GEN/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r clients/python/requirements.txt
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)

step "waiting for the database"
wait $SETUP || { cat "$ROOT/var/clients-setup.log" >&2; exit 1; }
cat "$ROOT/var/clients-setup.log"
# Django's own log (refused requests are logged as warnings) goes to the file as well.
$BIN/gunicorn tracker.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 \
  --access-logfile /dev/null --error-logfile "$ROOT/var/clients-server.log" \
  2>>"$ROOT/var/clients-server.log" &
SERVER=$!

rm -rf "$OUT" && mkdir -p "$OUT/python" "$OUT/typescript"
for _ in $(seq 1 60); do
  curl -sf -o "$OUT/schema.json" -H 'Accept: application/json' "$TRACKER_URL/api/schema/" && break
  sleep 0.5
done
[ -s "$OUT/schema.json" ] || { echo "no schema from $TRACKER_URL" >&2; tail -n 30 "$ROOT/var/clients-server.log" >&2; exit 1; }

step "lint the live schema: openapi-spec-validator"
$BIN/openapi-spec-validator "$OUT/schema.json"
step "lint the live schema: redocly (clients/redocly.yaml)"
(cd clients/typescript && npx --no-install redocly lint --config ../redocly.yaml \
  --format=summary "$OUT/schema.json" 2>&1 | grep -v '[║╔╚]')

step "python client: generate (openapi-python-client, unpatched) and run smoke.py"
(cd "$OUT/python" && PATH="$GEN/bin:$PATH" "$GEN/bin/openapi-python-client" generate \
  --url "$TRACKER_URL/api/schema/" --meta none --output-path tracker_client)
TRACKER_CLIENT_DIR="$OUT/python" "$GEN/bin/python" clients/python/smoke.py

step "typescript client: generate (openapi-typescript), type-check and run smoke.ts"
(cd clients/typescript \
  && npx --no-install openapi-typescript "$TRACKER_URL/api/schema/" --default-non-nullable=false \
       -o "$OUT/typescript/schema.d.ts" \
  && rm -rf dist && npx --no-install tsc -p tsconfig.json \
  && node dist/smoke.js)

step "both generated clients green"
