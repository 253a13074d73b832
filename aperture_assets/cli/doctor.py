"""`aperture doctor`: every check a run depends on, before any stage runs, one line each.

Settings first (every variable, with the one sentence of the first bad one); then the database, the media
server (its TV libraries and users, against APERTURE_TV_LIBRARIES and APERTURE_USERS), the AI provider (one
real embedding: the model is there and its dimension is known) and the library root (writable).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from aperture_resources.redaction import redact, register
from aperture_resources.settings import ConfigError, Settings, load_settings, split_list


def doctor(echo: Callable[[str], None]) -> int:
    """Run every check, print one line each; returns the exit code (1 if anything failed)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        echo(f"FAIL settings: {exc}")
        return 1
    register(*settings.secrets)
    echo(f"ok   settings: {len(Settings.model_fields)} variables valid (media server {settings.media_server_type}, "
         f"embedding provider {settings.embedding_provider}, library mode {settings.library_mode})")
    checks = (check_database, check_media_server, check_ai_provider, check_library_root)
    failed = 0
    for check in checks:
        try:
            line = check(settings)
        except Exception as exc:  # doctor reports every failure and carries on
            failed += 1
            echo(f"FAIL {check.__name__.removeprefix('check_').replace('_', ' ')}: {redact(str(exc))}")
        else:
            echo(f"ok   {line}")
    return 1 if failed else 0


def check_database(settings: Settings) -> str:
    from aperture_assets.cli.environment import prepare_environment
    from aperture_resources.database import DatabaseResource

    prepare_environment(settings)
    with DatabaseResource(url=os.environ["APERTURE_DATABASE_URL"]).connect() as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    where = "APERTURE_DATABASE_URL" if settings.database_url.get_secret_value() else "embedded"
    return f"database ({where}): reachable, schema migrated, pgvector {version[0]}"


def check_media_server(settings: Settings) -> str:
    from aperture_assets.logic.catalog_rows import select_tv_libraries
    from aperture_assets.logic.watch_rows import enabled_user_ids
    from aperture_assets.wiring.partitions import check_wanted_users
    from aperture_resources.media_server import SERVERS

    settings.require_media_server()
    resource = SERVERS[settings.media_server_type](
        url=settings.media_server_url, api_key=settings.media_server_api_key.get_secret_value(),
        concurrency=settings.media_server_concurrency, retries=1, timeout_seconds=10)
    with resource.client() as client:
        info = client.system_info()
        libraries = select_tv_libraries(client.libraries(), resource.wanted_libraries(), settings.picks_root_on_server)
        users = client.users()
    wanted = split_list(settings.users)
    check_wanted_users(users, wanted)
    enabled = enabled_user_ids(users, wanted)
    return (f"media server: {info.get('ProductName', client.kind)} {info.get('Version', '?')} at "
            f"{settings.media_server_url}; TV libraries: {', '.join(str(f.get('Name')) for f in libraries)}; "
            f"{len(enabled)} users get picks")


def check_ai_provider(settings: Settings) -> str:
    from aperture_resources.ai import AIProviderResource

    ai = AIProviderResource(provider=settings.embedding_provider, model=settings.embedding_model,
                            dimensions=settings.embedding_dimensions, chat_model=settings.chat_model,
                            openai_base_url=settings.openai_base_url,
                            openai_api_key=settings.openai_api_key.get_secret_value(),
                            ollama_host=settings.ollama_host, retries=1, timeout_seconds=20)
    try:
        vectors = ai.embedder().embed(["aperture doctor: a test sentence"])
    finally:
        ai.embedder().close()
    return f"AI provider: {ai.model_key()} answers with {vectors.shape[1]} dimensions"


def check_library_root(settings: Settings) -> str:
    root = settings.library_root_path
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".aperture-doctor-"):
            pass
    except OSError as exc:
        raise ConfigError(f"APERTURE_LIBRARY_ROOT: cannot write in {root} ({exc.strerror or exc}).") from None
    return f"library root: {root} is writable (the media server sees it as {settings.picks_root_on_server})"
