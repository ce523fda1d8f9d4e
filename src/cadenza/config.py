"""Settings, read once from the environment (prefix ``CADENZA_``) by the entrypoint."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

ENV_PREFIX = "CADENZA_"


class Settings(BaseSettings):
    """Every knob Cadenza has; defaults suit a single-process install on SQLite."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./cadenza.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+psycopg://…",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = Field(
        "",
        description="The server secret (16 bytes or more): keys for sessions, API-key "
        "digests and secret header encryption are derived from it; generated into "
        "./.cadenza-secret on first start when empty.",
    )
    previous_secret_keys: list[str] = Field(
        default_factory=list,
        description="Secrets replaced by secret_key that still verify API keys and "
        "sessions during a rotation (see `cadenza admin rotate-secret`).",
    )
    admin_email: str = ""
    admin_password: str = ""

    worker_id: str = ""
    claim_batch: int = 500
    lookahead_seconds: float = 0.5
    poll_interval_seconds: float = 1.0
    lease_margin_seconds: float = 30.0
    max_concurrency: int = 512
    max_per_host: int = 64
    shutdown_grace_seconds: float = 10.0
    heartbeat_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a worker shows it is alive; one silent for 1.5 times "
        "this is dead and its leases are freed at once.",
    )
    dead_worker_prune_seconds: float = Field(
        600.0, gt=0, description="Dead workers leave the workers list after this."
    )

    response_capture_bytes: int = 64 * 1024
    ssrf_allowlist: list[str] = Field(
        default_factory=list,
        description="CIDRs or host names that the SSRF guard lets through.",
    )
    signing_keys: list[str] = Field(
        default_factory=list,
        description="HMAC keys for Cadenza-Signature; the first signs, up to two are sent.",
    )

    rate_limit_per_minute: int = 600
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body accepted; larger ones get 413."
    )
    password_check_concurrency: int = Field(
        2, ge=1, description="Password checks (Argon2) run at once; more wait briefly."
    )

    metrics_token: str = Field(
        "",
        description="When set, GET /metrics needs 'Authorization: Bearer <token>'; "
        "empty: /metrics is open, like /healthz and /readyz.",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Where `cadenza worker` and `cadenza planner` serve metrics."
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of /metrics, /healthz and /readyz in `cadenza worker` and "
        "`cadenza planner` processes; 0: not served (`cadenza serve` uses its API port).",
    )

    retention_enabled: bool = Field(
        True, description="Apply tenants' retention policies inside `cadenza serve`."
    )
    retention_interval_seconds: float = Field(600.0, gt=0, description="Seconds between passes.")
    retention_batch: int = Field(
        1000, ge=1, le=100_000, description="Rows deleted per transaction while pruning."
    )
    retention_pause_seconds: float = Field(
        0.05, ge=0, description="Pause between pruning batches, for the scheduler's writes."
    )

    planner_enabled: bool = Field(True, description="Run the planner inside `cadenza serve`.")
    alert_interval_seconds: float = Field(
        15.0, gt=0, description="How often `cadenza serve` evaluates alert rules."
    )
    alerts_enabled: bool = Field(True, description="Evaluate alert rules in `cadenza serve`.")
    planner_debounce_seconds: float = 30.0
    planner_idle_after_seconds: float = 600.0
    planner_monthly_token_budget: int | None = Field(
        None, description="Tokens per tenant per month for the LLM planner; empty: unlimited."
    )
    planner_model_provider: Literal["openai", "anthropic"] = "openai"
    planner_model: str = Field(
        "", description="Model name for the LLM planner; empty: only the rules planner runs."
    )
    planner_base_url: str | None = Field(
        None, description="Any OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1."
    )
    planner_api_key: str | None = None
    planner_max_steps: int = 8
    planner_max_tokens: int = Field(1024, ge=1, description="Longest model answer, in tokens.")
    planner_concurrency: int = Field(8, ge=1, description="Analyses running at once.")
    planner_deadline_seconds: float = Field(
        180.0, gt=0, description="The longest one analysis may take, model calls included."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return value


def load_settings() -> Settings:
    """The settings from the environment and ``.env``; ``InvalidSettings`` names each
    bad one as it is set, without its value (it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings([f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    except SettingsError as exc:  # a list or mapping setting that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = _env_name(field.group(1)) if field else "a setting"
        raise InvalidSettings([f'{name}: not valid JSON (write a list as ["a", "b"])']) from None


class InvalidSettings(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _where(loc: tuple[int | str, ...]) -> str:
    """The variable a validation error's location names (none: the settings as a whole)."""
    return _env_name(str(loc[0])) if loc else "settings"
