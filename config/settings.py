"""Django settings, read only from the environment (see config/env.py and README's table).

The embedded default works with no variables at all: SQLite and media under ``var/``, Celery's
filesystem transport under ``var/broker``, local-memory caches.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from config.env import (
    ImproperEnvironment,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_paths,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HISTOCROWD_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    """The key from the environment, else one generated once and kept under var/ (0600)."""
    from_env = env_str("DJANGO_SECRET_KEY", "")
    if from_env:
        return from_env
    if env_bool("HISTOCROWD_PRODUCTION", False):
        raise ImproperEnvironment("DJANGO_SECRET_KEY must be set when HISTOCROWD_PRODUCTION=true")
    key_file = VAR_DIR / "secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "slides",
    "annotation",
    "learning",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 before any other work (config/bodylimit.py).
    "config.bodylimit.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A login the guard refused is answered 429 + Retry-After on every path.
    "annotation.login_guard.LoginRefusalMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A URL id that no row can have (negative, not a number, past 64 bits) is a 404, not a 500.
    "config.errors.IdRangeMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a live worker process in the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # WAL lets the web process read while the worker writes; the timeout absorbs short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches: "default" holds sessions and membership answers; "tiles" holds encoded tile bytes.
# Both are per-process memory unless a Redis URL is given.
_REDIS_CACHE_URL = env_str("HISTOCROWD_CACHE_URL", "")


def _cache(alias_prefix: str, max_entries: int) -> dict[str, object]:
    if _REDIS_CACHE_URL:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _REDIS_CACHE_URL,
            "KEY_PREFIX": alias_prefix,
        }
    return {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": alias_prefix,
        "OPTIONS": {"MAX_ENTRIES": max_entries},
    }


CACHES = {
    "default": _cache("histocrowd", 10_000),
    "tiles": _cache("histocrowd-tiles", env_int("TILE_CACHE_MAX_ENTRIES", 5_000, minimum=0)),
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Every login path (web pages, admin, token endpoint) authenticates through one guarded backend
# whose failure counters are database rows, shared by every process (annotation/login_guard.py).
AUTHENTICATION_BACKENDS = ["annotation.login_guard.GuardedModelBackend"]
# After LOGIN_FAILURES_MAX failures for an account from one address (five times as many from
# any address), its next attempt is refused (429) for LOGIN_DELAY_BASE seconds, doubled for every
# further failure, at most LOGIN_DELAY_MAX: a delay, never a lock. An address with five times
# LOGIN_FAILURES_MAX failures is refused only for accounts it failed on. Failures are forgotten
# LOGIN_FAILURES_WINDOW seconds after the last one.
LOGIN_FAILURES_MAX = env_int("LOGIN_FAILURES_MAX", 10, minimum=1)
LOGIN_FAILURES_WINDOW = env_int("LOGIN_FAILURES_WINDOW", 900, minimum=1)
LOGIN_DELAY_BASE = env_float("LOGIN_DELAY_BASE", 15.0, minimum=0.01)
LOGIN_DELAY_MAX = env_float("LOGIN_DELAY_MAX", 900.0, minimum=0.01)
# The client address is REMOTE_ADDR; X-Forwarded-For counts only through this many proxies in
# front of the web server (the client writes the rest of that header). The login guard and DRF
# read it alike.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
# Reset e-mails per address entered (five times as many per client address) within the window.
PASSWORD_RESET_MAX = env_int("PASSWORD_RESET_MAX", 3, minimum=1)
PASSWORD_RESET_WINDOW = env_int("PASSWORD_RESET_WINDOW", 3600, minimum=1)
LOGIN_REDIRECT_URL = "slides:library"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing
# Front-end libraries come from the npm registry (package.json); node_modules is not committed.
_OSD_BUILD = BASE_DIR / "node_modules" / "openseadragon" / "build" / "openseadragon"
STATICFILES_DIRS = [BASE_DIR / "static"]
_SWAGGER_DIST = BASE_DIR / "node_modules" / "swagger-ui-dist"
if _OSD_BUILD.is_dir():
    STATICFILES_DIRS.append(("vendor/openseadragon", _OSD_BUILD))
_REDOC_DIST = BASE_DIR / "node_modules" / "redoc"
if _SWAGGER_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/swagger-ui", _SWAGGER_DIST))
if _REDOC_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/redoc", _REDOC_DIST))
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("HISTOCROWD_MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
MEDIA_URL = "media/"

# Slides are registered only from under these roots (os.pathsep-separated); uploads land in the
# first writable one, UPLOAD_ROOT.
SLIDE_ROOTS = env_paths("SLIDE_ROOTS", [VAR_DIR / "slides"])
SLIDE_UPLOAD_ROOT = Path(env_str("SLIDE_UPLOAD_ROOT", str(VAR_DIR / "uploads"))).resolve()
SLIDE_UPLOAD_MAX_BYTES = env_int("SLIDE_UPLOAD_MAX_BYTES", 8 * 1024**3, minimum=1)
ARCHIVE_MAX_MEMBERS = env_int("ARCHIVE_MAX_MEMBERS", 20_000, minimum=1)
ARCHIVE_MAX_TOTAL_BYTES = env_int("ARCHIVE_MAX_TOTAL_BYTES", 16 * 1024**3, minimum=1)
ARCHIVE_MAX_RATIO = env_float("ARCHIVE_MAX_RATIO", 100.0, minimum=1.0)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
FILE_UPLOAD_TEMP_DIR = None
# A body holds a few 25k-vertex polygons (~0.6 MB each as JSON); a 1M-vertex body (~22 MB)
# is refused here, before any parsing (DRF >= 3.18.3 enforces it for JSON too).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024**2, minimum=1024)

# Deep zoom and crops.
TILE_STORE_ROOT = Path(env_str("TILE_STORE_ROOT", str(VAR_DIR / "tiles"))).resolve()
TILE_PREBUILD_MAX_TILES = env_int("TILE_PREBUILD_MAX_TILES", 20_000, minimum=0)
TILE_JPEG_QUALITY = env_int("TILE_JPEG_QUALITY", 80, minimum=1)
TILE_MAX_AGE_SECONDS = env_int("TILE_MAX_AGE_SECONDS", 7 * 24 * 3600, minimum=0)
SLIDE_HANDLE_CACHE_SIZE = env_int("SLIDE_HANDLE_CACHE_SIZE", 32, minimum=1)
CROP_MAX_PIXELS = env_int("CROP_MAX_PIXELS", 4096 * 4096, minimum=1)
CROP_MAX_SIDE = env_int("CROP_MAX_SIDE", 8192, minimum=1)
# What a crop may read from the slide at its pyramid level (0: no cap): a coarse crop of a
# single-level slide is read at level 0, and a 6 x 6 px answer once cost 144 Mpx (issue 14).
CROP_MAX_SOURCE_PIXELS = env_int("CROP_MAX_SOURCE_PIXELS", 4096 * 4096, minimum=0)
# Reads over CROP_HEAVY_SOURCE_PIXELS take one of CROP_HEAVY_READS slots per process (0: no
# bound); no slot within CROP_HEAVY_WAIT_SECONDS answers 503 with Retry-After (slides/readgate.py).
# No wait by default: a waiting request holds one of the process's few threads, and light crops
# queued behind the waiters (bench/crop_attack.py, at-cap attack: light crop p95 678 ms with a
# 1 s wait, 60 ms with none).
CROP_HEAVY_SOURCE_PIXELS = env_int("CROP_HEAVY_SOURCE_PIXELS", 2048 * 2048, minimum=0)
CROP_HEAVY_READS = env_int("CROP_HEAVY_READS", 1, minimum=0)
CROP_HEAVY_WAIT_SECONDS = env_float("CROP_HEAVY_WAIT_SECONDS", 0.0, minimum=0.0)
THUMBNAIL_MAX_SIDE = env_int("THUMBNAIL_MAX_SIDE", 1024, minimum=64)
# A slide whose thumbnail would be read from a larger level (no pyramid) fails ingest instead of
# making the worker allocate (4 bytes a pixel) for it.
SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS = env_int(
    "SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS", 16384 * 16384, minimum=1024 * 1024
)
ACCESS_CHECK_CACHE_SECONDS = env_int("ACCESS_CHECK_CACHE_SECONDS", 30, minimum=0)

# Annotation limits: real ASAP polygons reach 10.7k vertices; the cap must stay >= 20k.
ANNOTATION_MAX_VERTICES = env_int("ANNOTATION_MAX_VERTICES", 25_000, minimum=20_000)
ANNOTATION_IMPORT_MAX_BYTES = env_int("ANNOTATION_IMPORT_MAX_BYTES", 50 * 1024**2, minimum=1024)
ANNOTATION_IMPORT_MAX_SHAPES = env_int("ANNOTATION_IMPORT_MAX_SHAPES", 100_000, minimum=1)
# Label classes per project, on every path that creates them (API, set-up page, import).
LABEL_CLASSES_MAX = env_int("LABEL_CLASSES_MAX", 64, minimum=2)
# The draft's ``shown`` record (which layers the annotator had on): serialised size cap.
DRAFT_SHOWN_MAX_BYTES = env_int("DRAFT_SHOWN_MAX_BYTES", 4096, minimum=256)

LEARNING_DEVICE = env_str("LEARNING_DEVICE", "auto")
LEARNING_PRETRAINED_ENCODER = env_str("LEARNING_PRETRAINED_ENCODER", "")
# Active-learning rounds. Patches are cut at the project's target_mpp; a small network by default
# so that a CPU-only demo finishes a round in minutes (a GPU host raises these).
LEARNING_PATCH_SIZE = env_int("LEARNING_PATCH_SIZE", 128, minimum=32)
LEARNING_EPOCHS = env_int("LEARNING_EPOCHS", 30, minimum=1)
LEARNING_BATCH_SIZE = env_int("LEARNING_BATCH_SIZE", 16, minimum=1)
LEARNING_BASE_WIDTH = env_int("LEARNING_BASE_WIDTH", 16, minimum=4)
LEARNING_DEPTH = env_int("LEARNING_DEPTH", 3, minimum=1)
LEARNING_PATIENCE = env_int("LEARNING_PATIENCE", 8, minimum=1)
LEARNING_VAL_FRACTION = env_float("LEARNING_VAL_FRACTION", 0.25, minimum=0.0)
LEARNING_MC_SAMPLES = env_int("LEARNING_MC_SAMPLES", 8, minimum=2)
LEARNING_SCORE_CHUNK_TILES = env_int("LEARNING_SCORE_CHUNK_TILES", 64, minimum=1)
LEARNING_CANDIDATE_MIN_TISSUE = env_float("LEARNING_CANDIDATE_MIN_TISSUE", 0.3, minimum=0.0)
LEARNING_SEED = env_int("LEARNING_SEED", 0, minimum=0)
# Seconds one training chunk may run (0: a third of CELERY_TASK_TIME_LIMIT).
LEARNING_CHUNK_SECONDS = env_int("LEARNING_CHUNK_SECONDS", 0, minimum=0)
LEARNING_MAP_SIZE = env_int("LEARNING_MAP_SIZE", 32, minimum=4)
# A training chunk's lease, renewed after every epoch (0: the task time limit + 5 s). A chunk
# whose worker died is taken over once it lapses.
LEARNING_LEASE_SECONDS = env_int("LEARNING_LEASE_SECONDS", 0, minimum=0)

REST_FRAMEWORK = {
    # Token first, so unauthenticated API calls get 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.SafeJSONParser",  # nesting 100k deep is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # The browsable API's pages allow its inline styles, and only they (config/renderers.py).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "config.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Relation filters take bounded ids, not choices over every row (config/filters.py).
    "DEFAULT_FILTER_BACKENDS": ["config.filters.IdFilterBackend"],
    # limit <= 1000, offset clamped: a 64-bit-overflowing ?offset= is no 500 (config/pagination.py)
    "DEFAULT_PAGINATION_CLASS": "config.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # "format" is the crop endpoint's image format (png/jpeg), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    # Any DRF throttle keys on the same client address as the login guard.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "histocrowd API",
    "DESCRIPTION": "Crowdsourced annotation and active learning on whole-slide images.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema carries no data, but the whole API is for members: serve it to logged-in users.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Several models have a "status" field with its own choices: name each enum explicitly.
    "ENUM_NAME_OVERRIDES": {
        "SlideStatusEnum": "slides.models.SlideStatus",
        "RegionStatusEnum": "annotation.models.regions.RegionStatus",
        "AssignmentStatusEnum": "annotation.models.work.AssignmentStatus",
        "SubmissionStatusEnum": "annotation.models.work.SubmissionStatus",
        "ConsensusStatusEnum": "annotation.models.consensus.ConsensusStatus",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation can refuse (400/401/403/404/405, 413/415 on writes): say so in the schema.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
    # Served from npm's swagger-ui-dist, never a CDN: the docs work on a closed network.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
    "REDOC_DIST": "/static/vendor/redoc",
}

# Celery: the reliability baseline of RELIABILITY.md. Settings only read the environment; the
# demo command passes a Redis URL or the filesystem transport.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=10)
# Hard limit below the visibility timeout, so a healthy task is never redelivered while running.
CELERY_TASK_TIME_LIMIT = env_int(
    "CELERY_TASK_TIME_LIMIT", max(5, int(CELERY_VISIBILITY_TIMEOUT * 0.8)), minimum=1
)
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperEnvironment("CELERY_TASK_TIME_LIMIT must be below CELERY_VISIBILITY_TIMEOUT")
CELERY_REDIS_KEY_PREFIX = env_str("CELERY_REDIS_KEY_PREFIX", "")
CELERY_TASK_MAX_ATTEMPTS = env_int("CELERY_TASK_MAX_ATTEMPTS", 3, minimum=1)
CELERY_UNACKED_RESTORE_INTERVAL = env_float("CELERY_UNACKED_RESTORE_INTERVAL", 60.0, minimum=0.1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "histocrowd@localhost")

# Production hardening, switched on together so `check --deploy` passes (README: deployment).
if env_bool("HISTOCROWD_PRODUCTION", False):
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Scripts and styles only from this origin's files: no inline <script>, no on*= handlers, no
# style="" attributes, no CDN (templates pass colours and widths as data-* attributes that
# static/js/data_styles.js applies). One inline style by its hash: the <style> OpenSeadragon
# 6.1.1 injects (no focus outline on touch screens); a new version's text is reported by the
# browser tests. The API docs and the browsable API widen this for themselves only
# (config/api_docs.py, config/renderers.py).
_OSD_FOCUS_CSS = "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", _OSD_FOCUS_CSS],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
