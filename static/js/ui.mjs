// Shared page plumbing: elements by id, the #status/#error/#progress messages, busy state, and plain-language errors.

/** The element with this id (throws if the page lacks it, so a template change shows up at once). */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

/** Moves #progress, #status and #error right after an element, so messages appear next to what caused them. */
export function messagesAfter(element) {
  if (element.nextElementSibling !== $('progress')) element.after($('progress'), $('status'), $('error'));
}

/** Shows a status line (polite live region); an empty text clears it. */
export function showStatus(text) {
  $('status').textContent = text;
}

/** Shows an error (alert live region); an empty text hides it. */
export function showError(text) {
  const error = $('error');
  error.textContent = text;
  error.hidden = !text;
}

/** Clears both the status line and the error. */
export function clearMessages() {
  showStatus('');
  showError('');
}

/** Shows or hides #progress and disables or enables the controls of a form or section while work runs. */
export function setBusy(on, container) {
  $('progress').hidden = !on;
  $('app').setAttribute('aria-busy', String(on));
  if (container) for (const control of container.querySelectorAll('button, input, textarea')) control.disabled = on;
}

/** "1 h 5 min", "4 min 09 s" or "12 s" for a number of seconds. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${s} s`;
}

/** A local date and time for Unix seconds. */
export function formatTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** The message for no network, shared by every page. */
export const NO_NETWORK = 'No network: the node could not be reached. Check your connection and try again.';

/** A plain-language message for an error from api() or WebCrypto. */
export function describe(error) {
  if (error?.name === 'ApiError') {
    if (error.slug === 'network') return NO_NETWORK;
    if (error.status === 429) return `Too many attempts. Try again in ${formatDuration(error.retryAfter ?? 60)}.`;
    if (error.status >= 500) return 'The node failed to answer. Try again in a moment; if it keeps failing, its log says why.';
    if (error.slug === 'unauthenticated') return 'Your session has ended. Sign in again.';
    return `The node refused the request: ${error.message}`;
  }
  if (error?.name === 'WrappedKeyError') return `The stored wrapped key cannot be used: ${error.message}`;
  return `Something went wrong in this page: ${error?.message ?? error}`;
}

/** Calls tick(secondsLeft) now and every second until zero, then done(); returns a function that stops it. */
export function countdown(seconds, tick, done) {
  const end = Date.now() + seconds * 1000;
  let timer = null;
  const step = () => {
    const left = Math.ceil((end - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(timer);
      done();
    } else {
      tick(left);
    }
  };
  timer = setInterval(step, 1000);
  step();
  return () => clearInterval(timer);
}
