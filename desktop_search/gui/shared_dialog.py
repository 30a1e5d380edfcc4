""""Connect to a shared index": search an index that a team's file server or GPU box keeps in a bucket.

The dialog takes the URI (``s3://bucket/prefix``), the storage options a user needs (endpoint of a MinIO/Ceph
store, region, AWS profile, plain HTTP for a lab store), optional keys and the path mapping that turns the
indexing machine's paths into this machine's (``/srv/docs`` -> ``/Volumes/docs``). The options without secrets go
to the preferences; keys go to the system keychain, never to the INI file (with no keychain, the dialog says to
use ``AWS_ACCESS_KEY_ID`` / ``AWS_PROFILE`` instead). A connected window searches only: no folders, no indexing.
Changes apply when the window is opened again, like the index folder in Settings.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
)

from desktop_search.core.location import (
    IndexLocation,
    RemoteError,
    keychain_set,
    parse_options,
    public_options,
)
from desktop_search.core.pathmap import parse_rules
from desktop_search.gui.prefs import Key, Prefs

# Options with a field of their own; any other stored option is kept as it is.
_FIELDS = ("endpoint", "region", "profile", "allow_http")


class SharedIndexDialog(QDialog):
    def __init__(self, prefs: Prefs, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a shared index")
        self.prefs = prefs
        options = dict(parse_options(prefs.get(Key.STORAGE_OPTIONS)))
        self.uri = QLineEdit(prefs.get(Key.SHARED_INDEX))
        self.uri.setPlaceholderText("s3://bucket/team-index")
        self.endpoint = QLineEdit(options.get("endpoint", ""))
        self.endpoint.setPlaceholderText("AWS by default; e.g. https://minio.example.org:9000")
        self.region = QLineEdit(options.get("region", ""))
        self.profile = QLineEdit(options.get("profile", ""))
        self.profile.setPlaceholderText("a profile in ~/.aws/credentials (optional)")
        self.allow_http = QCheckBox("allow plain HTTP (a lab store without TLS)")
        self.allow_http.setChecked(options.get("allow_http", "") in ("true", "1", "yes"))
        self.key_id = QLineEdit()
        self.key_id.setPlaceholderText("optional: kept in the system keychain")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.path_map = QPlainTextEdit("\n".join(prefs.get(Key.PATH_MAP)))
        self.path_map.setPlaceholderText("/srv/docs=/Volumes/docs\n/srv/docs=\\\\fileserver\\docs")
        self.path_map.setFixedHeight(70)
        self.refresh = QSpinBox()
        self.refresh.setRange(1, 3600)
        self.refresh.setSuffix(" s")
        self.refresh.setValue(int(prefs.get(Key.REFRESH_S)))
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b00020")

        form = QFormLayout(self)
        form.addRow("Index URI", self.uri)
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Region", self.region)
        form.addRow("AWS profile", self.profile)
        form.addRow("", self.allow_http)
        form.addRow("Access key id", self.key_id)
        form.addRow("Secret access key", self.secret)
        form.addRow("Path mapping", self.path_map)
        form.addRow("New files appear within", self.refresh)
        note = QLabel("Search only: the team's indexing machine keeps this index up to date "
                      "(desktop-search watch FOLDER --index-dir URI). Applies when the window is opened again.")
        note.setWordWrap(True)
        form.addRow(note)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.disconnect_btn = QPushButton("Use my own index")
        self.disconnect_btn.setEnabled(bool(prefs.get(Key.SHARED_INDEX)))
        buttons.addButton(self.disconnect_btn, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.disconnect_btn.clicked.connect(self.disconnect)
        form.addRow(buttons)

    def disconnect(self) -> None:
        self.prefs.set(Key.SHARED_INDEX, "")
        super().accept()

    def accept(self) -> None:
        """Check and save; on a problem, say it in the dialog and keep it open."""
        try:
            options = dict(parse_options(self.prefs.get(Key.STORAGE_OPTIONS)))
            for key in _FIELDS:
                options.pop(key, None)
            for key, box in (("endpoint", self.endpoint), ("region", self.region), ("profile", self.profile)):
                if box.text().strip():
                    options[key] = box.text().strip()
            if self.allow_http.isChecked():
                options["allow_http"] = "true"
            location = IndexLocation.parse(self.uri.text(), public_options(options.items()))
            rules = parse_rules([line for line in self.path_map.toPlainText().splitlines() if line.strip()])
            if self.key_id.text().strip() or self.secret.text():
                if not (self.key_id.text().strip() and self.secret.text()):
                    raise ValueError("give both the access key id and the secret access key, or neither")
                keychain_set(location.uri, self.key_id.text().strip(), self.secret.text())
        except (ValueError, RemoteError) as e:
            self.error.setText(str(e))
            return
        self.prefs.set(Key.SHARED_INDEX, location.uri)
        self.prefs.set(Key.STORAGE_OPTIONS, [f"{k}={v}" for k, v in location.options])
        self.prefs.set(Key.PATH_MAP, [f"{src}={dst}" for src, dst in rules])
        self.prefs.set(Key.REFRESH_S, self.refresh.value())
        super().accept()
