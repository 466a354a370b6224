#!/usr/bin/env bash
# `make run`: migrate, seed the demo tenant, print fresh demo credentials and serve the API.
# Without REDIS_URL it needs nothing else (SQLite, local files, jobs run in-process);
# with REDIS_URL (and DATABASE_URL) set it uses them and starts a worker beside the server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PORT=${PORT:-8000}
TENANT=${DEMO_TENANT:-demo}

if [ -z "${REDIS_URL:-}" ]; then
  export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
fi
if [ -z "${DJANGO_SECRET_KEY:-}" ] && [ "${DJANGO_DEBUG:-0}" != "1" ]; then
  mkdir -p data
  [ -f data/secret_key ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' > data/secret_key
  DJANGO_SECRET_KEY=$(cat data/secret_key)
  export DJANGO_SECRET_KEY
fi
mkdir -p data

manage() { "$PY" manage.py "$@" 2> >(grep -v "jobs run in-process" >&2); }

manage migrate --no-input -v 0
manage demo_seed "$TENANT"
manage member_add "$TENANT" ci-robot --json >/dev/null
password=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
manage member_add "$TENANT" supervisor --supervisor --password "$password" --json >/dev/null
api_key=$(manage apikey_create "$TENANT" --name demo-key --rotate --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
oauth=$(manage oauth_client_create "$TENANT" --name demo-client --user ci-robot --rotate --json)
client_id=$(echo "$oauth" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
client_secret=$(echo "$oauth" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')

base="http://127.0.0.1:$PORT"
cat <<MSG

sparkexport is starting at $base  (tenant: $TENANT)
  API docs:        $base/api/docs/
  API key:         $api_key
                   (headers: x-synthetic-key: <key>, x-tenant-name: $TENANT)
  OAuth client:    client_id=$client_id
                   client_secret=$client_secret
                   token URL: $base/auth/realms/$TENANT/protocol/openid-connect/token
  Admin:           $base/admin/  user 'supervisor', password '$password'
  Metrics, probes: $base/metrics  $base/health  $base/ready
These credentials are new on every start; the previous ones were revoked. For the README's
walk-through, in another terminal:
  export API_KEY='$api_key' CLIENT_ID='$client_id' CLIENT_SECRET='$client_secret'

MSG

if [ -n "${REDIS_URL:-}" ]; then
  manage collectstatic --no-input -v 0
  # The server's and the worker's metrics, added up by /metrics (docs/observability.md);
  # emptied here, while none of them runs.
  export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/data/metrics}
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
  "$PY" manage.py rqworker exports imports webhooks --with-scheduler &
  worker=$!
  "$PY" manage.py rqcron exports.cron &
  cron=$!
  trap 'kill $worker $cron 2>/dev/null' EXIT
  # gunicorn.conf.py is read from here; the request lines replace an access log.
  exec_server=("$PY" -m gunicorn sparkexport.wsgi --bind "127.0.0.1:$PORT" --workers 2)
else
  exec_server=("$PY" manage.py runserver "127.0.0.1:$PORT" --noreload)
fi
"${exec_server[@]}"
