"""The "GCP Colorize" docker: backend state, settings, Colorize / Cancel and progress.

It only shows and edits the shared Session; the work happens there."""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QCompleter, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                             QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from . import session, settings_store
from .core.hostcore import MAX_SEED, MAX_VARIATION, new_seed

CLASS_NAMES_FILE = session.PLUGIN_DIR / "imagenet_classes.tsv"
AUTO_CLASS = "auto"
OUTPUT_MODE_TITLES = {"color": "Full colour layers", "chroma": "Chroma only (Color blending)"}


def load_class_names() -> list[tuple[int, str]]:
    """(ImageNet index, names) from the names file installed with the plugin; [] if absent."""
    try:
        lines = CLASS_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    classes = []
    for line in lines[1:]:  # header: index, wordnet_id, names
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].isdigit():
            classes.append((int(parts[0]), parts[2]))
    return classes


class ColorizeDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("GCP Colorize")
        self.session = session.instance()
        root = QWidget(self)
        layout = QVBoxLayout(root)

        state_row = QHBoxLayout()
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip("Connect to the backend, starting it if it is not running")
        self.connect_button.clicked.connect(lambda: self.session.connect_backend(start=True))
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.connect_button)
        layout.addLayout(state_row)

        form = QFormLayout()
        self.alternatives = QSpinBox()
        self.alternatives.setRange(0, 16)
        form.addRow("Alternatives", self.alternatives)
        self.variation = QDoubleSpinBox()
        self.variation.setRange(0.0, MAX_VARIATION)
        self.variation.setSingleStep(0.25)
        self.variation.setToolTip("How far random alternatives move from the main result "
                                  "(1: the model's usual spread; 0: none); class alternatives ignore it")
        form.addRow("Variation", self.variation)

        seed_row = QHBoxLayout()
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("Seed of random alternatives; class alternatives ignore it")
        new_seed_button = QPushButton("New seed")
        new_seed_button.clicked.connect(lambda: self.seed.setValue(new_seed()))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(new_seed_button)
        form.addRow("Seed", seed_row)

        self.class_choice = QComboBox()
        self.class_choice.setEditable(True)
        self.class_choice.setInsertPolicy(QComboBox.NoInsert)
        self.class_choice.addItem(AUTO_CLASS, AUTO_CLASS)
        for index, names in load_class_names():
            self.class_choice.addItem(f"{names} ({index})", str(index))
        completer = QCompleter(self.class_choice.model(), self.class_choice)
        completer.setFilterMode(Qt.MatchContains)
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setCompletionMode(QCompleter.PopupCompletion)
        self.class_choice.setCompleter(completer)
        self.class_choice.setToolTip("ImageNet class of the colour prior: auto (the classifier decides), "
                                     "or type to search the class names")
        form.addRow("Class", self.class_choice)
        self.class_alternatives = QCheckBox("Alternatives from other likely classes")
        self.class_alternatives.setToolTip("Alternatives use likely classes that colour differently; "
                                           "unchecked: random ones from the seed and the variation")
        form.addRow("", self.class_alternatives)

        walk_row = QHBoxLayout()
        self.walk_direction = QComboBox()
        self.walk_direction.setEditable(True)
        self.walk_direction.addItem("")
        self.walk_direction.setToolTip("Latent walk direction (empty: none)")
        self.walk_amount = QDoubleSpinBox()
        self.walk_amount.setRange(-20.0, 20.0)
        self.walk_amount.setSingleStep(0.25)
        walk_row.addWidget(self.walk_direction, 1)
        walk_row.addWidget(self.walk_amount)
        form.addRow("Latent walk", walk_row)

        self.output_mode = QComboBox()
        for mode, title in OUTPUT_MODE_TITLES.items():
            self.output_mode.addItem(title, mode)
        form.addRow("Output", self.output_mode)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.colorize_button = QPushButton("Colorize")
        self.colorize_button.clicked.connect(self._colorize)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.session.cancel)
        buttons.addWidget(self.colorize_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        layout.addWidget(self.progress)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.setWidget(root)

        # Stable object names: shortcuts for styling and for the GUI test that drives the panel.
        for name in ("state_label", "connect_button", "alternatives", "variation", "seed", "class_choice",
                     "class_alternatives", "walk_direction", "walk_amount", "output_mode", "colorize_button",
                     "cancel_button", "progress", "message"):
            getattr(self, name).setObjectName(f"gcp_colorize_{name}")
        new_seed_button.setObjectName("gcp_colorize_new_seed")

        # Variation and seed make only random alternatives: greyed out for class ones. Before the
        # settings are shown, so that ticking the stored choice greys them out too.
        for widget in (self.variation, self.seed, new_seed_button):
            self.class_alternatives.toggled.connect(lambda on, widget=widget: widget.setEnabled(not on))
        self._show_settings()
        for signal in (self.alternatives.valueChanged, self.variation.valueChanged, self.seed.valueChanged,
                       self.class_choice.currentTextChanged, self.class_alternatives.toggled,
                       self.walk_direction.currentTextChanged, self.walk_amount.valueChanged,
                       self.output_mode.currentIndexChanged):
            signal.connect(self._store_settings)
        self.session.changed.connect(self._show_session)
        self._show_session()
        self.session.connect_backend(start=False)  # show the state; starting waits for a Colorize

    def canvasChanged(self, canvas):
        pass  # the docker acts on the active document when asked, not per canvas

    def _colorize(self):
        self._store_settings()
        self.session.colorize(Krita.instance().activeDocument())

    def _show_settings(self):
        s = self.session.settings
        self.alternatives.setValue(s.alternatives)
        self.variation.setValue(s.variation)
        self.seed.setValue(s.seed)
        found = self.class_choice.findData(s.class_choice)
        if found >= 0:
            self.class_choice.setCurrentIndex(found)
        else:
            self.class_choice.setEditText(s.class_choice)
        self.class_alternatives.setChecked(s.class_alternatives)
        self.walk_direction.setEditText(s.walk_direction)
        self.walk_amount.setValue(s.walk_amount)
        self.output_mode.setCurrentIndex(max(0, self.output_mode.findData(s.output_mode)))

    def _store_settings(self, *_):
        s = self.session.settings
        s.alternatives = self.alternatives.value()
        s.variation = self.variation.value()
        s.seed = self.seed.value()
        text = self.class_choice.currentText().strip()
        found = self.class_choice.findText(text, Qt.MatchFixedString)
        s.class_choice = self.class_choice.itemData(found) if found >= 0 else (text or AUTO_CLASS)
        s.class_alternatives = self.class_alternatives.isChecked()
        s.walk_direction = self.walk_direction.currentText().strip()
        s.walk_amount = self.walk_amount.value()
        s.output_mode = self.output_mode.currentData()
        settings_store.save(s)

    def _offer_directions(self, names) -> None:
        """The backend's direction names in the walk combo (the typed text is kept)."""
        offered = [self.walk_direction.itemText(i) for i in range(1, self.walk_direction.count())]
        if list(names) == offered:
            return
        text = self.walk_direction.currentText()
        self.walk_direction.blockSignals(True)
        while self.walk_direction.count() > 1:
            self.walk_direction.removeItem(1)
        self.walk_direction.addItems(list(names))
        self.walk_direction.setEditText(text)
        self.walk_direction.blockSignals(False)

    def _show_session(self):
        s = self.session
        self.state_label.setText(s.backend_text)
        self.state_label.setStyleSheet("color: #d04040;" if s.backend_state == "error" else "")
        self.connect_button.setEnabled(s.backend_state in ("disconnected", "error"))
        self.colorize_button.setEnabled(not s.busy)
        self.cancel_button.setEnabled(s.busy)
        self.progress.setValue(round(s.progress * 1000))
        self.progress.setFormat(f"%p% {s.stage}" if s.busy and s.stage else "%p%")
        self.message.setText(s.message)
        self._offer_directions(s.directions)
        self.message.setStyleSheet("color: #d04040;" if s.message_is_error else "")
