"""Settings from a TOML file plus environment overrides, built once and passed down.

Where things come from, strongest first:

* ``CLAUDOMATOR_DATA_DIR`` overrides ``data_dir``;
* ``CLAUDOMATOR_CONFIG`` names the config file (default: ``<data dir>/config.toml``);
* the config file;
* the defaults (:mod:`~claudomator.config.settings`, :mod:`~claudomator.config.sections`).

One module per noun, each importing only those above it in this list: ``prices`` (the price
table, :func:`estimate_cost`), ``sections`` (the ``[agents.<name>]``, ``[isolation]``,
``[local_model]`` and ``[retention]`` tables), ``settings`` (:class:`Settings`), ``loading``
(:func:`load_settings`: file + environment) and ``template`` (the default config file,
:func:`write_default_config`). Their public names are importable from here. This package is on
the CLI's hot path: it imports pydantic, platformdirs and tomllib, nothing heavier.
"""

from claudomator.config.loading import (
    DEPRECATED_BINARY_KEYS,
    ENV_CONFIG,
    ENV_DATA_DIR,
    config_path,
    default_data_dir,
    load_settings,
)
from claudomator.config.prices import DEFAULT_PRICES, ModelPrice, estimate_cost
from claudomator.config.sections import (
    MAX_RETENTION_DAYS,
    AgentSettings,
    IsolationSettings,
    LocalModelSettings,
    RetentionSettings,
    binary_setting,
)
from claudomator.config.settings import SQLITE_URL, Settings
from claudomator.config.template import DEFAULT_CONFIG, write_default_config

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_PRICES",
    "DEPRECATED_BINARY_KEYS",
    "ENV_CONFIG",
    "ENV_DATA_DIR",
    "MAX_RETENTION_DAYS",
    "SQLITE_URL",
    "AgentSettings",
    "IsolationSettings",
    "LocalModelSettings",
    "ModelPrice",
    "RetentionSettings",
    "Settings",
    "binary_setting",
    "config_path",
    "default_data_dir",
    "estimate_cost",
    "load_settings",
    "write_default_config",
]
