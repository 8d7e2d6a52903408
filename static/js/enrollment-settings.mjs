// The enrollment setting on /account, loaded when its section opens: how a new device joins (open, approval or window) and the window for new devices (open for some minutes, close now); opening the window and changing the mode need a step-up first.

import { ApiError } from './api.mjs';
import { stepUpThisDevice } from './device.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

/** The page's signed-in API call; set once the section is wired. */
let call = null;

/** Reads the settings again when an open window runs out, so the page does not claim it is still open. */
let closesTimer = null;

const SAVED = {
  open: 'Saved: your password lets a new device in, and a device where you are signed in can also approve one.',
  approval: 'Saved: a new device now asks, and a device where you are signed in approves it after you compare the code both show.',
  window: 'Saved: your password lets a new device in only while you open a window for it.',
};

/** Shows the settings {mode, configured_mode, window} the node answered. */
function render({ mode, window: open }) {
  $('enrollment-mode').value = mode;
  $('enrollment-window-state').textContent = open
    ? `A window for new devices is open until ${formatTime(open.closes_at)}.`
    : 'No window for new devices is open.';
  $('enrollment-window-close').hidden = !open;
  $('enrollment-window-open').textContent = open ? 'Keep it open for that long from now' : 'Open the window';
  clearTimeout(closesTimer);
  if (open) closesTimer = setTimeout(refresh, Math.max(1, open.closes_at - Date.now() / 1000 + 1) * 1000);
}

async function refresh() {
  try {
    render(await call('GET', '/enrollment'));
  } catch (error) {
    showError(describe(error));
  }
}

/** Runs change() with the form busy and messages next to it; step-up first when asked. */
async function change(form, stepUp, send, done) {
  messagesAfter(form);
  clearMessages();
  setBusy(true, form);
  $('enrollment-mode').disabled = true;
  try {
    if (stepUp) {
      showStatus('Confirming it is you…');
      await stepUpThisDevice();
    }
    const settings = await send();
    render(settings);
    showStatus(done(settings));
  } catch (error) {
    showStatus('');
    showError(error instanceof ApiError && error.field === 'minutes' ? 'A window stays open for 1 to 60 minutes.' : describe(error));
  }
  $('enrollment-mode').disabled = false;
  setBusy(false, form);
}

/** Wires the section's forms (once) and shows the settings in force. */
export async function openEnrollment(pageCall) {
  if (call) return;
  call = pageCall;
  const modeForm = $('enrollment-mode-form');
  modeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const mode = $('enrollment-mode').value;
    change(modeForm, true, () => call('PUT', '/enrollment', { mode }), () => SAVED[mode]);
  });
  const windowForm = $('enrollment-window-form');
  windowForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const minutes = Number($('enrollment-minutes').value);
    change(windowForm, true, () => call('POST', '/enrollment/window', { minutes }), (s) => `New devices may join until ${formatTime(s.window.closes_at)}.`);
  });
  $('enrollment-window-close').addEventListener('click', () =>
    change(windowForm, false, () => call('DELETE', '/enrollment/window'), () => 'The window is closed: new devices join as the mode says.'),
  );
  await refresh();
}
