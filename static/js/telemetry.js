// Telemetry stream: JSON snapshots at ~10 Hz from /ws/labs/<lab>/telemetry, reconnecting with backoff.

import { wsUrl } from "./api.js";

export class TelemetryStream {
  /**
   * @param {() => Promise<string>} labId resolves the lab id to watch (re-asked after each drop, so a
   *   restarted server hands this session a fresh lab)
   * @param {{onSnapshot: (s: object) => void, onLink: (state: string) => void}} handlers
   */
  constructor(labId, handlers) {
    this.labId = labId;
    this.handlers = handlers;
    this.ws = null;
    this.backoff = 500;
    this.stopped = false;
  }

  async start() {
    if (this.stopped) return;
    this.handlers.onLink("connecting");
    let lab;
    try {
      lab = await this.labId();
    } catch {
      this.retry();
      return;
    }
    const ws = new WebSocket(wsUrl(`/ws/labs/${encodeURIComponent(lab)}/telemetry`));
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.handlers.onLink("live");
    };
    ws.onmessage = (event) => {
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch {
        return; // one bad frame is skipped, the next one arrives 100 ms later
      }
      this.handlers.onSnapshot(snapshot);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handlers.onLink("down");
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 8000);
    setTimeout(() => this.start(), delay);
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
  }
}
