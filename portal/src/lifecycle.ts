// What the view on screen keeps running (timers, event streams), stopped when the portal
// shows another view.

const stops: (() => void)[] = [];

/** Runs `stop` when the current view is left. */
export function onLeave(stop: () => void): void {
  stops.push(stop);
}

/** Stops everything the view being left started. */
export function leaveView(): void {
  for (const stop of stops.splice(0)) {
    try {
      stop();
    } catch {
      // A stop that fails leaves nothing running worth reporting.
    }
  }
}

/** Calls `tick` every `ms` while the current view is shown. */
export function every(ms: number, tick: () => void): void {
  const timer = window.setInterval(tick, ms);
  onLeave(() => window.clearInterval(timer));
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}
