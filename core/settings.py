"""Settings from the environment (``CAP_*``), built explicitly by each entry point, never at import.

Embedded defaults: data in ``./var``, outputs in ``./build``, the prover's company id from
``CAP_SUBJECT`` (e.g. its LEI), the development environment unless ``CAP_ENV`` says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.documents import validate_model
from core.layout import DataLayout
from core.store.url import VARIABLE as DATABASE_URL_VARIABLE
from core.store.url import DatabaseUrl, parse_database_url

DEFAULT_SUBJECT = "LEI-DEMO-0000000000000"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)
    data_dir: Path = Path("var")
    build_dir: Path = Path("build")
    subject: str = DEFAULT_SUBJECT
    owner: str = "Company"
    env: str = "dev"
    max_list_age_days: int = Field(default=14, ge=1)
    operator_public_keys: tuple[str, ...] = ()
    """Pinned operator keys (``CAP_OPERATOR_PUBLIC_KEYS``, comma-separated base64): with any pinned,
    the keyring must carry a valid signature chain (docs/formats/keys.md, "Signed keyring")."""
    operator_key_file: Path | None = None
    """The operator's private key (``CAP_OPERATOR_KEY``), outside the data dir; only on an operator's
    machine or job, never in a replica or backup."""
    approvers: tuple[str, ...] = ()  # who may approve rotation steps; empty: anyone who may resume runs
    proof_scheme: str = Field(default="v3", pattern="^v[23]$")
    """``cap proof build``'s default scheme (``CAP_PROOF_SCHEME``): v3 (confidential) or v2."""
    zk_setup_dir: Path | None = None
    """The finished trusted setup v3 proofs are proved under (``CAP_ZK_SETUP``); unset: the development setup,
    NOT FOR PRODUCTION."""
    zk_allow_dev: bool = False
    """Accept proofs under pinned *development* verifying keys (``CAP_ZK_ALLOW_DEV=1``): tests and demos only,
    anyone can forge under them."""
    database_url: SecretStr | None = None
    """Where the trusted state lives (``CAP_DATABASE_URL``): unset or ``sqlite://``, files under ``data_dir``;
    ``postgresql://…``, a PostgreSQL database (:mod:`core.store`). Secret: it may carry a password."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field, var in (
            ("data_dir", "CAP_DATA_DIR"),
            ("build_dir", "CAP_BUILD_DIR"),
            ("subject", "CAP_SUBJECT"),
            ("owner", "CAP_KEY_OWNER"),
            ("env", "CAP_ENV"),
            ("max_list_age_days", "CAP_MAX_LIST_AGE_DAYS"),
            ("proof_scheme", "CAP_PROOF_SCHEME"),
            ("zk_allow_dev", "CAP_ZK_ALLOW_DEV"),
            ("zk_setup_dir", "CAP_ZK_SETUP"),
        ):
            if env.get(var):
                values[field] = env[var]
        if env.get("CAP_OPERATOR_PUBLIC_KEYS"):
            values["operator_public_keys"] = tuple(
                k.strip() for k in env["CAP_OPERATOR_PUBLIC_KEYS"].split(",") if k.strip()
            )
        if env.get("CAP_OPERATOR_KEY"):
            values["operator_key_file"] = env["CAP_OPERATOR_KEY"]
        if env.get("CAP_ROTATION_APPROVERS"):
            names = env["CAP_ROTATION_APPROVERS"].split(",")
            values["approvers"] = tuple(a.strip() for a in names if a.strip())
        if env.get(DATABASE_URL_VARIABLE):
            parse_database_url(env[DATABASE_URL_VARIABLE])  # refuse a bad URL here, without echoing it
            values["database_url"] = env[DATABASE_URL_VARIABLE]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return validate_model(cls, values, source="environment", what="settings (CAP_*)")

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def database(self) -> DatabaseUrl:
        """The parsed ``CAP_DATABASE_URL``. Raises :class:`InvalidInputError` for a bad one."""
        return parse_database_url(None if self.database_url is None else self.database_url.get_secret_value())
