"""A real Apache Kafka 4.1 broker (KRaft combined mode) run from jars resolved from Maven Central.

Layout under ``<run_dir>/kafka``: ``server.properties`` (rendered from deploy/kafka), ``data/``
(log dirs, formatted on first start), ``broker.log`` and ``broker.pid``. The jars live in
``deploy/kafka/lib`` and are shared by every run dir.

The client listener follows the settings: PLAINTEXT by default; with
``LENS_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` (mechanism PLAIN) it requires SASL and accepts
exactly the configured user, so the local stack runs with the same client settings as a secured
production cluster. SSL listeners need certificates: use an existing cluster for those.
"""

import base64
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from lens.errors import ConfigError, RuntimeDependencyError
from lens.settings import LensSettings
from services.kafka.admin import wait_until_ready
from services.kafka.connection import KafkaConnection

__all__ = ["KafkaStatus", "LocalKafka", "resolve_kafka_jars"]

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
JARS_DIR = DEPLOY_DIR / "lib"
_JARS_STAMP = JARS_DIR / ".resolved"
_VERSION_LINE = re.compile(r"Kafka version: (\S+)")
# A JAAS option name (user_<name>) is one token of letters, digits, '_' and '-'.
_SASL_USER = re.compile(r"[A-Za-z0-9_-]+")


def _require(program: str, install_hint: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise RuntimeDependencyError(f"`{program}` is not on PATH: {install_hint}")
    return path


def resolve_kafka_jars() -> Path:
    """Copy the broker's runtime jars from Maven Central into deploy/kafka/lib (once per pom)."""
    pom = DEPLOY_DIR / "pom.xml"
    if _JARS_STAMP.exists() and _JARS_STAMP.stat().st_mtime >= pom.stat().st_mtime:
        return JARS_DIR
    mvn = _require("mvn", "install Maven (apt-get install maven) to resolve the Kafka jars")
    shutil.rmtree(JARS_DIR, ignore_errors=True)
    result = subprocess.run(
        [
            mvn, "-q", "-B", "-f", str(pom),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={JARS_DIR}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeDependencyError(
            f"Maven could not resolve the Kafka jars (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}"
        )
    _JARS_STAMP.touch()
    return JARS_DIR


def _new_cluster_id() -> str:
    # Kafka's Uuid string: URL-safe base64 of 16 random bytes, never starting with '-'.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the broker's own listeners do: connections of a broker just stopped linger in
        # TIME_WAIT on its ports, which block a plain bind but not a restart.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap: str
    version: str | None
    log: Path


class LocalKafka:
    """Start, check and stop one local broker described by ``settings``."""

    def __init__(self, settings: LensSettings) -> None:
        if not settings.uses_local_kafka:
            raise ConfigError(
                f"LENS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} points at an existing cluster; "
                "unset it to manage a local broker."
            )
        self.settings = settings
        self.home = settings.run_dir.resolve() / "kafka"
        self.config_path = self.home / "server.properties"
        self.data_dir = self.home / "data"
        self.log_path = self.home / "broker.log"
        self.pid_path = self.home / "broker.pid"
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def connection(self) -> KafkaConnection:
        """How clients reach this broker (its listener follows the same settings)."""
        return KafkaConnection.from_settings(self.settings)

    def _client_listener(self) -> tuple[str, str]:
        """The client listener's protocol and, for SASL, the properties that configure it."""
        settings = self.settings
        protocol = settings.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return protocol, ""
        if protocol != "SASL_PLAINTEXT" or settings.kafka_sasl_mechanism != "PLAIN":
            raise ConfigError(
                f"the local broker serves PLAINTEXT or SASL_PLAINTEXT with PLAIN, not {protocol} "
                f"with {settings.kafka_sasl_mechanism}: point LENS_KAFKA_BOOTSTRAP at a cluster "
                "that has it, or change LENS_KAFKA_SECURITY_PROTOCOL / LENS_KAFKA_SASL_MECHANISM."
            )
        user = settings.kafka_sasl_username
        password = settings.kafka_sasl_password.get_secret_value()
        if not _SASL_USER.fullmatch(user) or any(ord(c) < 32 for c in password):
            raise ConfigError(
                "the local broker needs a SASL user name of letters, digits, '_' and '-', and a "
                "password without control characters (LENS_KAFKA_SASL_USERNAME/PASSWORD)."
            )
        # JAAS quoting (\ and \"), then .properties escaping (\) on top of it.
        quoted = password.replace("\\", "\\\\").replace('"', '\\"').replace("\\", "\\\\")
        # The broker talks to itself (inter-broker) as the same user.
        return protocol, "\n".join([
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{quoted}" user_{user}="{quoted}";',
        ])

    def _java_command(self, java: str, *args: str) -> list[str]:
        return [
            java,
            *shlex.split(self.settings.kafka_jvm_options),
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
            "-cp",
            f"{resolve_kafka_jars()}/*",
            *args,
        ]

    def _render_config(self) -> None:
        listener, sasl = self._client_listener()
        template = Template((DEPLOY_DIR / "server.properties").read_text())
        # Owner-only: with SASL the file holds the password.
        self.config_path.touch(mode=0o600)
        self.config_path.chmod(0o600)
        self.config_path.write_text(
            template.substitute(
                host=self.settings.kafka_host,
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                log_dirs=self.data_dir,
                listener=listener,
                sasl=sasl,
            )
        )

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        result = subprocess.run(
            self._java_command(
                java, "kafka.tools.StorageTool", "format", "--standalone",
                "-t", _new_cluster_id(), "-c", str(self.config_path), "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeDependencyError(
                f"formatting Kafka storage failed:\n{(result.stdout + result.stderr)[-2000:]}"
            )

    def running_pid(self) -> int | None:
        """The broker's pid if the pid file names a live broker of this run dir."""
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        # The pid may have been reused by an unrelated process since the broker died.
        return pid if "kafka.Kafka" in cmdline and str(self.config_path) in cmdline else None

    def start(self) -> KafkaStatus:
        """Start the broker (if not running) and wait until it answers an AdminClient."""
        if self.running_pid() is not None:
            wait_until_ready(self.connection, self.settings.kafka_start_timeout_s)
            return self.status()
        java = _require("java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
        for port in (self.settings.kafka_port, self.settings.kafka_controller_port):
            if not _port_free(self.settings.kafka_host, port):
                raise RuntimeDependencyError(
                    f"port {port} on {self.settings.kafka_host} is in use: stop what holds it or "
                    "choose other ports (LENS_KAFKA_PORT, LENS_KAFKA_CONTROLLER_PORT)."
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format_storage(java)
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C in the terminal that ran `lens stack up` leaves it running.
            self._process = subprocess.Popen(
                self._java_command(
                    java, f"-Xmx{self.settings.kafka_heap}", "kafka.Kafka", str(self.config_path)
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(str(self._process.pid))
        try:
            wait_until_ready(
                self.connection,
                self.settings.kafka_start_timeout_s,
                is_alive=lambda: self._process.poll() is None,
            )
        except RuntimeDependencyError as exc:
            self.stop()
            raise RuntimeDependencyError(f"{exc}\nlast broker log lines:\n{self._log_tail()}") from exc
        return self.status()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker: SIGTERM for a controlled shutdown, SIGKILL after ``timeout_s``."""
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout_s):
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        except ProcessLookupError:
            pass
        self._process = None
        self.pid_path.unlink(missing_ok=True)
        return True

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return True
            time.sleep(0.2)
        return False

    def version(self) -> str | None:
        """The Kafka version the running broker printed at start-up (AppInfoParser)."""
        if not self.log_path.exists():
            return None
        versions = _VERSION_LINE.findall(self.log_path.read_text(errors="replace"))
        return versions[-1] if versions else None

    def status(self) -> KafkaStatus:
        pid = self.running_pid()
        return KafkaStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            version=self.version() if pid is not None else None,
            log=self.log_path,
        )

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
