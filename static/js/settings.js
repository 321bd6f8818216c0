// The Settings dialog (Hyper-V Manager's "Settings…" of a VM): memory and Integration Services.
// A native <dialog> opened with showModal(): focus moves into it and stays there, Esc cancels, and
// focus returns to the button that opened it. Settings take effect at the partition's next start.

const MEMORY_MIN = 4;
const MEMORY_MAX = 256;

export class SettingsDialog {
  /**
   * @param {HTMLDialogElement} dialog the #settings-dialog element of the page
   * @param {{save: (name: string, changes: object) => Promise<object>, saved: (before: object, after: object) => void}} handlers
   *   save: PUT the changes (throws ApiError with the server's message); saved: after a successful save
   */
  constructor(dialog, handlers) {
    this.dialog = dialog;
    this.handlers = handlers;
    this.partition = null;
    this.opener = null;
    const $ = (id) => dialog.querySelector(`#${id}`);
    this.form = $("settings-form");
    this.title = $("settings-title");
    this.when = $("settings-when");
    this.memory = $("settings-memory");
    this.icField = $("settings-ic-field");
    this.ic = $("settings-ic");
    this.rootNote = $("settings-root-note");
    this.error = $("settings-error");
    this.saveButton = $("settings-save");
    $("settings-cancel").addEventListener("click", () => this.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault(); // method="dialog" would close before the server has answered
      this.save();
    });
    dialog.addEventListener("close", () => {
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
      this.partition = null;
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open for partition ``p`` (its description); ``opener`` gets the focus back on close. */
  open(p, opener = null) {
    this.partition = p;
    this.opener = opener;
    this.title.textContent = `Settings of ${p.name}`;
    this.memory.value = String(p.memory_mb ?? "");
    const child = p.role !== "root";
    this.icField.hidden = !child;
    this.ic.disabled = !child;
    this.ic.checked = Boolean(p.integration_services);
    this.rootNote.hidden = child;
    const booted = ["running", "paused", "starting", "stopping"].includes(p.state);
    this.when.textContent = booted
      ? `Changes take effect at the next start: ${p.name} is ${p.state} and keeps its current settings until you restart it (Reset, or Turn off and Start).`
      : `Changes take effect at the next start of ${p.name}.`;
    this.error.textContent = "";
    this.saveButton.disabled = false;
    if (!this.dialog.open) this.dialog.showModal();
    this.memory.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** The changed settings, or a message saying what is wrong with the form. */
  changes() {
    const p = this.partition;
    const out = {};
    const memory = Number(this.memory.value);
    if (!Number.isInteger(memory) || memory % 2 !== 0 || memory < MEMORY_MIN || memory > MEMORY_MAX) {
      return { error: `Memory must be an even number of MiB from ${MEMORY_MIN} to ${MEMORY_MAX}.` };
    }
    if (memory !== p.memory_mb) out.memory_mb = memory;
    if (p.role !== "root" && this.ic.checked !== Boolean(p.integration_services)) {
      out.integration_services = this.ic.checked;
    }
    return { changes: out };
  }

  async save() {
    const p = this.partition;
    if (!p) return;
    const { changes, error } = this.changes();
    if (error) {
      this.error.textContent = error;
      this.memory.focus();
      return;
    }
    if (!Object.keys(changes).length) {
      this.close();
      return;
    }
    this.saveButton.disabled = true;
    this.error.textContent = "";
    try {
      const after = await this.handlers.save(p.name, changes);
      this.handlers.saved(p, after);
      this.close();
    } catch (err) {
      this.error.textContent = `Not saved: ${err.message}`;
      this.saveButton.disabled = false;
    }
  }
}
