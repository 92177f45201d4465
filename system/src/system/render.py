"""systemd units and an nginx site for a Linux server, rendered by ``callmanager deploy render``.

Every service gets a unit that runs ``callmanager migrate`` or ``callmanager serve SERVICE``; the gateway is
a template (``callmanager-gateway@PORT``) so replicas are more instances behind nginx. Settings that are
not secret go in the rendered ``callmanager.env``; secrets stay in the operator's ``secrets.env``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

SERVICES = ("contacts", "generator", "importexport", "backup")
"""The units besides ``migrate`` and the gateway template, in start order."""


@dataclass(frozen=True)
class ServerLayout:
    """Where things live on the server and how many gateways run."""

    server_name: str = "callmanager.example.lan"
    executable: str = "/opt/callmanager/venv/bin/callmanager"
    user: str = "callmanager"
    config_dir: str = "/etc/callmanager"
    data_dir: str = "/var/lib/callmanager"
    backup_dir: str = "/var/backups/callmanager"
    contacts_port: int = 5101
    gateway_ports: tuple[int, ...] = (5000,)
    proxy_address: str = "127.0.0.1"
    """Where nginx connects from: the gateways believe X-Forwarded-* from this address only."""
    upstream_host: str = "127.0.0.1"
    """This server's address as nginx reaches it (loopback when nginx runs here)."""
    tls_certificate: str = "/etc/ssl/callmanager/fullchain.pem"
    tls_certificate_key: str = "/etc/ssl/callmanager/privkey.pem"
    max_upload_mb: int = 100
    metrics_allow: tuple[str, ...] = field(default=("127.0.0.1",))
    """Addresses or networks allowed to read /metrics through nginx (the Prometheus host)."""

    @property
    def gateway_host(self) -> str:
        """Loopback when nginx runs on this machine; every interface when it connects from another."""
        return "127.0.0.1" if ipaddress.ip_address(self.proxy_address).is_loopback else "0.0.0.0"  # noqa: S104


def render(layout: ServerLayout) -> dict[str, str]:
    """Every file to install, by name: units, ``callmanager.target``, ``callmanager.env``, nginx site."""
    files = {
        "callmanager.env": _environment(layout),
        "callmanager.target": _target(layout),
        "callmanager-migrate.service": _migrate_unit(layout),
        "callmanager-gateway@.service": _service_unit(
            layout,
            "gateway (one instance per port: callmanager-gateway@5000, @5001, ...)",
            f"serve gateway --host {layout.gateway_host} --port %i",
            after=["callmanager-contacts.service"],
        ),
        "callmanager-contacts.service": _service_unit(
            layout, "contacts", f"serve contacts --host 127.0.0.1 --port {layout.contacts_port}", after=[]
        ),
    }
    for service in ("generator", "importexport", "backup"):
        files[f"callmanager-{service}.service"] = _service_unit(
            layout, service, f"serve {service}", after=["callmanager-contacts.service"]
        )
    files["nginx-callmanager.conf"] = _nginx_site(layout)
    return files


def unit_names(layout: ServerLayout) -> list[str]:
    """The units ``callmanager.target`` starts, gateway instances included (for ``systemctl enable``)."""
    return [
        "callmanager-migrate.service",
        *(f"callmanager-{service}.service" for service in SERVICES),
        *(f"callmanager-gateway@{port}.service" for port in layout.gateway_ports),
    ]


def _environment(layout: ServerLayout) -> str:
    return f"""\
# Settings every CallManager unit reads (not secret). Secrets — CALLMANAGER_DATABASE_URL,
# CALLMANAGER_REDIS_URL, CALLMANAGER_SECRET_KEY — go in {layout.config_dir}/secrets.env (mode 0600).
# A change here needs `systemctl restart callmanager.target`.
CALLMANAGER_ENVIRONMENT=production
CALLMANAGER_DATA_DIR={layout.data_dir}
CALLMANAGER_BACKUP_DIR={layout.backup_dir}
CALLMANAGER_CONTACTS_URL=http://127.0.0.1:{layout.contacts_port}
CALLMANAGER_TRUSTED_PROXIES={layout.proxy_address}
CALLMANAGER_MAX_UPLOAD_MB={layout.max_upload_mb}
CALLMANAGER_LOG_FORMAT=json
"""


def _target(layout: ServerLayout) -> str:
    wants = " ".join(unit_names(layout))
    return f"""\
[Unit]
Description=CallManager (every service)
Wants={wants}
After=network-online.target postgresql.service redis-server.service

[Install]
WantedBy=multi-user.target
"""


def _common(layout: ServerLayout) -> str:
    return f"""\
User={layout.user}
Group={layout.user}
WorkingDirectory={layout.data_dir}
EnvironmentFile={layout.config_dir}/callmanager.env
EnvironmentFile={layout.config_dir}/secrets.env
UMask=0077
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
ProtectHome=true
ReadWritePaths=-{layout.data_dir} -{layout.backup_dir}
"""


def _migrate_unit(layout: ServerLayout) -> str:
    return f"""\
[Unit]
Description=CallManager database migrations (before any service starts)
After=network-online.target postgresql.service
Wants=network-online.target
PartOf=callmanager.target

[Service]
Type=oneshot
RemainAfterExit=true
ExecStart={layout.executable} migrate
{_common(layout)}"""


def _service_unit(layout: ServerLayout, what: str, arguments: str, *, after: list[str]) -> str:
    ordered = " ".join(["callmanager-migrate.service", *after])
    return f"""\
[Unit]
Description=CallManager {what}
Requires=callmanager-migrate.service
After=network-online.target postgresql.service redis-server.service {ordered}
PartOf=callmanager.target

[Service]
Type=simple
ExecStart={layout.executable} {arguments}
Restart=on-failure
RestartSec=2
TimeoutStopSec=30
{_common(layout)}
[Install]
WantedBy=callmanager.target
"""


def _nginx_site(layout: ServerLayout) -> str:
    upstreams = "\n".join(f"    server {layout.upstream_host}:{port};" for port in layout.gateway_ports)
    metrics = "\n".join(f"        allow {address};" for address in layout.metrics_allow)
    return f"""\
# CallManager behind nginx: TLS, Socket.IO's WebSocket upgrade, uploads up to MAX_UPLOAD_MB.
# Install as /etc/nginx/sites-available/callmanager.conf, link it into sites-enabled, `nginx -t`, reload.
map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
}}

upstream callmanager_gateway {{
    # One connection's Socket.IO session must stay on one gateway when it falls back to long-polling.
    ip_hash;
{upstreams}
    keepalive 32;
}}

server {{
    listen 80;
    listen [::]:80;
    server_name {layout.server_name};
    return 301 https://$host$request_uri;
}}

server {{
    # "listen ... http2" rather than "http2 on;": the servers desks' centres run (Debian 12: nginx 1.22,
    # Ubuntu 24.04: 1.24) do not know the newer directive; 1.25+ accepts this form with a warning.
    listen 443 ssl http2;
    listen [::]:443 ssl http2;
    server_name {layout.server_name};

    ssl_certificate     {layout.tls_certificate};
    ssl_certificate_key {layout.tls_certificate_key};
    ssl_protocols       TLSv1.2 TLSv1.3;
    ssl_session_cache   shared:callmanager:10m;
    ssl_session_timeout 1d;

    # Imports: the file plus the multipart envelope.
    client_max_body_size {layout.max_upload_mb + 1}m;

    # A location that sets any header of its own repeats these: nginx inherits them only otherwise.
    proxy_set_header Host              $host;
    proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Real-IP         $remote_addr;

    location /socket.io/ {{
        proxy_pass http://callmanager_gateway;
        proxy_http_version 1.1;
        proxy_set_header Upgrade    $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host              $host;
        proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Real-IP         $remote_addr;
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
        proxy_buffering off;
    }}

    location = /metrics {{
{metrics}
        deny all;
        proxy_pass http://callmanager_gateway;
    }}

    location / {{
        proxy_pass http://callmanager_gateway;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host              $host;
        proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Real-IP         $remote_addr;
        # Large exports and imports' checks take a while.
        proxy_read_timeout 300s;
    }}
}}
"""
