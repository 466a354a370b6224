"""Settings, all from the environment; the defaults are for local development only.

Production mode (DJANGO_DEBUG unset or false) refuses to start without DJANGO_SECRET_KEY
and without REDIS_URL: the in-process queue is a development convenience, never a
production fallback.
"""
import os
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SPARKEXPORT_DATA_DIR", BASE_DIR / "data"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

# Served over HTTPS (docs/deployment.md): plain HTTP is redirected, cookies are secure-only, and
# a TLS-terminating proxy is trusted to say so in X-Forwarded-Proto. HSTS only when asked for:
# once browsers have seen it, the site cannot go back to plain HTTP for that long.
HTTPS = env_bool("DJANGO_HTTPS")
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD")
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]  # load balancers probe over plain HTTP

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: the docs work offline
    "django_rq",
    "oauth2_provider",
    "tenants",
    "exports",
]

MIDDLEWARE = [
    # First: it times everything after it and answers the probes before host checks.
    "sparkexport.request_logs.RequestObservationMiddleware",
    # Second: JSON errors on API paths, also for a Host the next ones would refuse in HTML.
    "sparkexport.api.middleware.ApiErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sparkexport.urls"
WSGI_APPLICATION = "sparkexport.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'sparkexport.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Serialises writers, so the per-tenant job limit holds on SQLite too.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The job history's covering indexes (INCLUDE) are PostgreSQL's; SQLite indexes the key columns.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# A persistent connection that died (a database restart) is replaced before it is used.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
# Django's handlers, which also hash each uploaded file as it arrives (sparkexport/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "sparkexport.uploads.HashingMemoryFileUploadHandler",
    "sparkexport.uploads.HashingTemporaryFileUploadHandler",
]
MEDIA_URL = "media/"

S3_BUCKET = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if S3_BUCKET:
    from boto3.s3.transfer import TransferConfig

    _s3_options = {
        "bucket_name": S3_BUCKET,
        "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        "signature_version": "s3v4",
        "file_overwrite": True,  # keys are UUID- or hash-named, never user-chosen
        "default_acl": None,
        "querystring_auth": True,
        # Bounded memory for package uploads: 2 parts of 8 MiB in flight, not 10.
        "transfer_config": TransferConfig(max_concurrency=2, multipart_chunksize=8 * 1024 * 1024),
    }
    _file_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options}
    _package_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_s3_options, "location": "packages"},
    }
else:
    _file_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    _package_storage = {"BACKEND": "sparkexport.storage.PackageFileStorage"}

STORAGES = {
    "default": _file_storage,
    "packages": _package_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Where the worker builds a package before handing it to storage (default:
# MEDIA_ROOT/.partial, on the same disk, so finishing a package is a rename).
PACKAGE_WORK_DIR = os.environ.get("PACKAGE_WORK_DIR", "")

# --- Queue -----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED_QUEUE = not REDIS_URL
if EMBEDDED_QUEUE and not DEBUG:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. Production mode needs a Redis server for the job queues "
        "(REDIS_URL=redis://host:6379/0) and a worker (manage.py rqworker exports imports webhooks --with-scheduler). "
        "Set DJANGO_DEBUG=1 to run jobs in-process for local development instead."
    )
_redis_url = REDIS_URL or "redis://127.0.0.1:6379/0"
RQ_QUEUES = {
    "exports": {"URL": _redis_url, "DEFAULT_TIMEOUT": 3600},
    "imports": {"URL": _redis_url, "DEFAULT_TIMEOUT": 3600},
    "webhooks": {"URL": _redis_url, "DEFAULT_TIMEOUT": 300},
}
RQ = {
    "COMMIT_MODE": "auto",  # services enqueue through transaction.on_commit themselves
    "WORKER_CLASS": "exports.worker.ExportsWorker",  # job ids in RQ's lines, metrics of horses, scratch
}

# Waiting jobs are taken round-robin between tenants (sparkexport/fair_queue.py), so one
# tenant's backlog holds another's job back by at most one job; 0 for plain arrival order.
QUEUE_TENANT_FAIR = env_bool("QUEUE_TENANT_FAIR", True)

# This host's name as workers record it and the reaper compares it: the reaper checks PIDs
# only of workers on its own host. Set it where two hosts (or containers with their own PID
# namespaces) would otherwise report the same socket.gethostname().
HOST_NAME = os.environ.get("SPARKEXPORT_HOSTNAME", "").strip() or socket.gethostname()
# A worker running a job renews its heartbeat in Redis this often (RQ's job_monitoring_interval,
# 30 s by default in RQ). The reaper, on any host, judges a worker dead once it has missed
# WORKER_MISSED_HEARTBEATS of them in a row: a killed worker's job is failed within about
# WORKER_HEARTBEAT_SECONDS x WORKER_MISSED_HEARTBEATS plus one reaper interval.
WORKER_HEARTBEAT_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_SECONDS", "10"))
WORKER_MISSED_HEARTBEATS = int(os.environ.get("WORKER_MISSED_HEARTBEATS", "3"))

# Rate-limit counters must be shared by every server process: Redis when there is one.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "sparkexport"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiKeyAuthentication",
        "tenants.api.authentication.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sparkexport.api.parsers.NestingSafeJSONParser"],
    "EXCEPTION_HANDLER": "sparkexport.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["sparkexport.api.throttling.JobCreateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "job_create": os.environ.get("JOB_CREATE_RATE", "300/min"),
        "auth_failure": os.environ.get("AUTH_FAILURE_RATE", "60/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "sparkexport: Spark-compatible ImpEx API",
    "DESCRIPTION": (
        "The Coherent Spark v4 export and import API, self-hosted. Authenticate with an API key "
        "(`x-synthetic-key` plus `x-tenant-name`) or an OAuth2 client-credentials bearer "
        "token from `POST /auth/realms/{tenant}/protocol/openid-connect/token`.\n\n"
        "Every error is JSON, `{type, code, message, details}`; each operation's error responses "
        "list the `code`s it answers with that status. Any request may also answer 404 `NOT_FOUND` "
        "(no endpoint at that path), 405 `METHOD_NOT_ALLOWED`, or 500 `INTERNAL_ERROR` (or `ERROR`, "
        "not expected). The contract in words is docs/api.md."
    ),
    "VERSION": "4.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/\{tenant\}/api/v4",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from this installation's static files, never from a CDN; no badge
    # fetched from the online validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "exports.models.JobStatus",
        "CancelStatusEnum": ["cancelled"],
        "ImportItemStatusEnum": "exports.imports.plan.ItemStatus",
    },
}

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("OAUTH_TOKEN_TTL_SECONDS", "3600")),
    "SCOPES": {"spark": "Spark APIs"},
    "DEFAULT_SCOPES": ["spark"],
    # Only the client-credentials grant is served (tenants/api/oauth.py); the rest follows the
    # OAuth 2.0 Security BCP (RFC 9700), as django-oauth-toolkit 4 will by default.
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    **{f"COMPLIANT_BCP_RFC9700_{rule}": True for rule in (
        "IMPLICIT_GRANT", "PASSWORD_GRANT", "PKCE_METHOD", "ACCESS_TOKEN_TRANSPORT",
        "AUTHZ_RESPONSE_ISS", "TOKEN_STORAGE", "REFRESH_TOKEN", "REDIRECT_URI_SCHEME", "PKCE_REQUIRED",
    )},
    "OAUTH2_VALIDATOR_CLASS": "tenants.api.oauth.TenantOAuth2Validator",
}

OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# This installation's name in the manifests of its packages (`source_installation`), so an
# import elsewhere records where a version came from; unset, manifests carry null.
INSTALLATION_NAME = os.environ.get("INSTALLATION_NAME", "").strip() or None

# Signed download links (outputs.files[].file) stay valid this long.
EXPORT_DOWNLOAD_LINK_TTL = int(os.environ.get("EXPORT_DOWNLOAD_LINK_TTL", "3600"))

# Status polls answered from per-process snapshots while Redis says they are current
# (sparkexport/snapshots/); needs REDIS_URL. SNAPSHOT_MAX_AGE bounds a document snapshot's life
# (API keys: 5 s, whatever this says).
STATUS_SNAPSHOTS = env_bool("STATUS_SNAPSHOTS", True)
SNAPSHOT_MAX_AGE = float(os.environ.get("SNAPSHOT_MAX_AGE", "60"))

LOGIN_URL = "admin:login"

# --- Webhooks (docs/webhooks.md) -------------------------------------------------------
# Where the links of a webhook's status document point (there is no request to take it from).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000")


def _retry_delays(value: str) -> tuple[int, ...]:
    try:
        delays = tuple(int(item) for item in value.split(",") if item.strip())
    except ValueError:
        delays = ()
    if not delays or min(delays) < 0:
        raise ImproperlyConfigured(f"WEBHOOK_RETRY_DELAYS is {value!r}: give seconds, comma-separated, e.g. 60,300,3600.")
    return delays


# Seconds before each retry of a delivery that failed: exponential, about 24 hours in all.
WEBHOOK_RETRY_DELAYS = _retry_delays(os.environ.get("WEBHOOK_RETRY_DELAYS", "15,60,300,900,1800,3600,7200,14400,28800,28800"))
# On: private, loopback and link-local receivers and plain http are allowed (tests, on-premises).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS")

# --- Logs and metrics (docs/observability.md) -------------------------------------------
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}: use text (the default) or json.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "sparkexport.logs.TextFormatter"},
        "json": {"()": "sparkexport.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # runserver's access lines repeat the request lines, with the query string (a download
        # link's token): the request lines replace them.
        "django.server": {"level": "CRITICAL"},
        # Its 4xx warnings repeat the request lines too, logged after the request's context.
        "django.request": {"level": "ERROR"},
    },
}

# /metrics is open without a token; with one it wants `Authorization: Bearer <token>`.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# A worker with METRICS_PORT serves its own /metrics (for a host without a web server).
METRICS_PORT = int(os.environ.get("METRICS_PORT", "0") or 0)
METRICS_ADDR = os.environ.get("METRICS_ADDR", "0.0.0.0")
# Read at each scrape: the installation's gauges, from the database and Redis.
METRICS_COLLECTORS = ["exports.observability.JobLoadCollector"]
