"""Facts about the Hockeypuck snap on the machine: names, ports and paths as the daemon sees them.

One source of truth for the workload, the config renderer and the tests that tie the charm to
the snap recipe in `snap/`.
"""

from pathlib import PurePosixPath

SNAP_NAME = "hockeypuck"
DAEMON_APP = "hockeypuck"
SERVICE = f"snap.{SNAP_NAME}.{DAEMON_APP}.service"

HKP_PORT = 11371
RECON_PORT = 11370
METRICS_PORT = 9626
METRICS_PATH = "/metrics"
HEALTH_PATH = "/pks/health"

SNAP_COMMON = PurePosixPath("/var/snap") / SNAP_NAME / "common"
SNAP_CURRENT = PurePosixPath("/snap") / SNAP_NAME / "current"

# The project's snap reads hockeypuck.conf; the store snap's wrapper reads `config`.
CONFIG_FILE = SNAP_COMMON / "hockeypuck.conf"
STORE_SNAP_CONFIG_FILE = SNAP_COMMON / "config"
PREFIX_TREE = SNAP_COMMON / "ptree"
SNAP_YAML = SNAP_CURRENT / "meta" / "snap.yaml"
# The daemon's log file when the snap shares it through its `logs` content slot (the COS
# collector reads it there); without the slot the daemon logs to the systemd journal.
LOG_SLOT = "logs"
LOG_DIR = SNAP_COMMON / "logs"
LOG_FILE = LOG_DIR / "hockeypuck.log"
# Hockeypuck's HTML templates and static web root: where this project's recipe installs them
# (`make install prefix=/usr`), then where upstream's recipe, the store snap's, does.
TEMPLATES_DIR = SNAP_CURRENT / "usr/share/hockeypuck/templates"
WEBROOT_DIR = SNAP_CURRENT / "usr/share/hockeypuck/www"
WEB_LAYOUTS = (
    (TEMPLATES_DIR, WEBROOT_DIR),
    (SNAP_CURRENT / "templates", SNAP_CURRENT / "www"),
)
